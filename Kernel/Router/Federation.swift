import Logging
import MCPGFrames
import MCPGJSON
import Synchronization

/// How one backend's catalog joins the gateway's (the `backends.<name>` entry of the config).
public struct BackendSettings: Sendable {
    public var name: String
    /// Exposed tool and prompt names are `<prefix>__<name>` when set.
    public var prefix: String?
    /// How long a backend that went down keeps its entries.
    public var grace: Duration
    /// Time between periodic re-reads of its lists; nil: only on its change notifications.
    public var refresh: Duration?
    /// Whether the backend may call the gateway's tools during a call (`backends.<name>.calls_tools`), as the
    /// calling principal: what a pipeline does.
    public var callsTools: Bool

    public init(name: String, prefix: String? = nil, grace: Duration = .seconds(30), refresh: Duration? = nil,
                callsTools: Bool = false) {
        self.name = name
        self.prefix = prefix
        self.grace = grace
        self.refresh = refresh
        self.callsTools = callsTools
    }
}

/// The catalog as it changes: each backend's latest listing and health, merged in config order into an immutable
/// `Catalog` whose generation grows with every change (so cursors and cached lists of an older one are refused).
public final class CatalogStore: Sendable {
    struct Backend {
        var listing: BackendListing?
        /// Since when, and why, the backend is down; nil while it is up.
        var down: (since: ContinuousClock.Instant, reason: String)?
    }
    struct State {
        var backends: [String: Backend] = [:]
        var current: Catalog
        var generation: UInt32
    }

    public let settings: [BackendSettings]
    let state: Mutex<State>

    /// A store for the backends in `settings` (config order), starting from `catalog`.
    public init(settings: [BackendSettings], catalog: Catalog = Catalog()) {
        self.settings = settings
        state = Mutex(State(current: catalog, generation: catalog.generation))
    }

    /// A store whose catalog never changes (tests, and gateways whose backends report no changes).
    public convenience init(fixed catalog: Catalog) { self.init(settings: [], catalog: catalog) }

    public var current: Catalog { state.withLock { $0.current } }

    func settings(of backend: String) -> BackendSettings? { settings.first { $0.name == backend } }

    /// Sets (or with nil, removes) one backend's listing and rebuilds the catalog. Returns the kinds whose
    /// entries changed, and the new catalog's problems.
    @discardableResult
    public func update(_ backend: String, listing: BackendListing?) -> (changed: Set<ListKind>, problems: [CatalogProblem]) {
        state.withLock { s in
            let old = s.current
            s.backends[backend, default: Backend()].listing = listing
            s.generation &+= 1
            let listings = settings.compactMap { s.backends[$0.name]?.listing }
            s.current = Catalog(listings: listings, generation: s.generation)
            return (Self.changes(old, s.current), s.current.problems)
        }
    }

    /// Marks a backend down (first time only: `since` stays the first failure). Returns true when it was up.
    @discardableResult
    public func markDown(_ backend: String, reason: String, now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { s in
            if s.backends[backend]?.down != nil { return false }
            s.backends[backend, default: Backend()].down = (now, reason)
            return true
        }
    }

    /// Marks a backend up. Returns true when it was down.
    @discardableResult
    public func markUp(_ backend: String) -> Bool {
        state.withLock { s in
            guard s.backends[backend]?.down != nil else { return false }
            s.backends[backend]?.down = nil
            return true
        }
    }

    func isDown(_ backend: String) -> Bool { state.withLock { $0.backends[backend]?.down != nil } }

    /// The backends down longer than their grace period that still have entries listed.
    func expired(now: ContinuousClock.Instant = .now) -> [String] {
        state.withLock { s in
            settings.compactMap { b -> String? in
                guard let e = s.backends[b.name], let down = e.down, e.listing != nil, now - down.since >= b.grace
                else { return nil }
                return b.name
            }
        }
    }

    /// Which kinds differ between two catalogs (by exposed key and listed object).
    static func changes(_ a: Catalog, _ b: Catalog) -> Set<ListKind> {
        var out: Set<ListKind> = []
        if a.tools.map(\.tool) != b.tools.map(\.tool) { out.insert(.tools) }
        if a.prompts.map(\.item) != b.prompts.map(\.item) { out.insert(.prompts) }
        if a.resources.map(\.item) != b.resources.map(\.item) { out.insert(.resources) }
        if a.templates.map(\.item) != b.templates.map(\.item) { out.insert(.templates) }
        return out
    }
}

extension ListKind {
    /// The notification that tells clients this list changed (TOOL-1, PROMPT-1, RES-5).
    var changedNotification: String {
        switch self {
        case .tools: return "notifications/tools/list_changed"
        case .prompts: return "notifications/prompts/list_changed"
        case .resources, .templates: return "notifications/resources/list_changed"
        }
    }
}

extension Gateway {
    /// Reads every list of one backend: tools (required), then prompts, resources and templates (optional: a
    /// backend without them answers -32601).
    public func listBackend(_ name: String) async -> Result<BackendListing, StageFailure> {
        guard let stage = backends[name] else { return .failure(StageFailure(.malformed("no backend \(name)"))) }
        var listing = BackendListing(name: name, prefix: store.settings(of: name)?.prefix, tools: [])
        for (op, member) in [
            ("list_tools", "tools"), ("list_prompts", "prompts"), ("list_resources", "resources"),
            ("list_resource_templates", "resourceTemplates"),
        ] {
            switch await stage.caller.call(op: op, request: .object([:]), timeout: settings.callTimeout, emit: nil) {
            case .success(let answer):
                guard let items = answer[member]?.arrayValue else {
                    return .failure(StageFailure(.malformed("\(op) answered without a \(member) array")))
                }
                switch member {
                case "tools": listing.tools = items
                case "prompts": listing.prompts = items
                case "resources": listing.resources = items
                default: listing.templates = items
                }
            case .failure(let f):
                if op != "list_tools", case .plugin(let code, _) = f.kind, code == -32601 { continue }
                return .failure(f)
            }
        }
        return .success(listing)
    }

    /// Re-reads one backend's lists and swaps them into the catalog; tells every session which lists changed.
    /// A backend that cannot be listed is marked down (its entries stay for its grace period).
    public func refresh(_ name: String) async {
        switch await listBackend(name) {
        case .success(let listing):
            if store.markUp(name) { logger.notice("backend is up", metadata: ["mcpg.backend": "\(name)"]) }
            let (changed, problems) = store.update(name, listing: listing)
            for p in problems where p.backend == name {
                logger.error("catalog entry left out", metadata: ["mcpg.backend": "\(name)", "mcpg.problem": "\(p.message)"])
            }
            announce(changed)
        case .failure(let f):
            if store.markDown(name, reason: f.summary) {
                logger.warning("backend is down", metadata: ["mcpg.backend": "\(name)", "mcpg.error": "\(f.summary)"])
            }
        }
    }

    /// Sends the list_changed notifications for `kinds` to every session (one per notification method).
    func announce(_ kinds: Set<ListKind>) {
        guard !kinds.isEmpty else { return }
        var methods: [String] = []
        for k in [ListKind.tools, .prompts, .resources, .templates] where kinds.contains(k) {
            if !methods.contains(k.changedNotification) { methods.append(k.changedNotification) }
        }
        for m in methods { sessions.broadcast(["jsonrpc": "2.0", "method": .string(m)]) }
    }

    /// Keeps the catalog current until the task is cancelled: one `watch` call per backend (its change
    /// notifications trigger refreshes; resource updates go to subscribed sessions), periodic refreshes, retries
    /// of backends that are down, and removal of entries of backends down past their grace period.
    public func maintainCatalog() async {
        await withTaskGroup(of: Void.self) { group in
            for b in store.settings {
                group.addTask { await self.watch(b.name) }
                group.addTask {
                    var since = ContinuousClock.now
                    while !Task.isCancelled {
                        // A backend that is down is retried every 2 s; one that is up at its refresh interval.
                        try? await Task.sleep(for: .seconds(2))
                        let due = b.refresh.map { ContinuousClock.now - since >= $0 } ?? false
                        if self.store.isDown(b.name) || due {
                            since = .now
                            await self.refresh(b.name)
                        }
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    for name in self.store.expired() {
                        self.logger.warning("backend down past its grace period; its entries are removed",
                                            metadata: ["mcpg.backend": "\(name)"])
                        self.announce(self.store.update(name, listing: nil).changed)
                    }
                }
            }
        }
    }

    /// Runs one backend's `watch` call and acts on what it emits; restarts it (with backoff) when it ends, unless
    /// the backend does not watch (-32601).
    func watch(_ name: String) async {
        guard let stage = backends[name] else { return }
        var backoff: Duration = .milliseconds(500)
        while !Task.isCancelled {
            let armed = Flag()
            let emit: @Sendable (JSON) -> Bool = { [self] message in
                guard let method = message["method"]?.stringValue else { return false }
                switch method {
                case "notifications/tools/list_changed", "notifications/prompts/list_changed",
                    "notifications/resources/list_changed":
                    // Coalesced: a burst of notifications costs one refresh.
                    if armed.value.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
                        Task {
                            try? await Task.sleep(for: .milliseconds(50))
                            armed.value.store(false, ordering: .relaxed)
                            await self.refresh(name)
                        }
                    }
                case "notifications/resources/updated":
                    if let uri = message["params"]?["uri"]?.stringValue {
                        sessions.resourceUpdated(uri, notification: message)
                    }
                case "notifications/mcpg/health":
                    let status = message["params"]?["status"]?.stringValue
                    let reason = message["params"]?["reason"]?.stringValue ?? ""
                    if status == "down" {
                        if store.markDown(name, reason: reason) {
                            logger.warning("backend is down", metadata: ["mcpg.backend": "\(name)", "mcpg.error": "\(reason)"])
                        }
                    } else if status == "up" {
                        Task { await self.refresh(name) }
                    }
                default:
                    logger.debug("backend notification ignored", metadata: ["mcpg.backend": "\(name)", "mcpg.method": "\(method)"])
                }
                return true
            }
            let result = await stage.caller.call(op: "watch", request: .object([:]), timeout: .seconds(315_360_000), emit: emit)
            if case .failure(let f) = result, case .plugin(let code, _) = f.kind, code == -32601 { return }
            if Task.isCancelled { return }
            logger.warning("backend watch ended; restarting it", metadata: ["mcpg.backend": "\(name)"])
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(30))
        }
    }
}

/// A flag shared with closures that run on other threads.
final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}
