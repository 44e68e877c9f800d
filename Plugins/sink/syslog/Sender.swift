#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import PluginKit
import SinkBuffer
import Synchronization

/// Sends buffered messages from a thread of its own with plain sockets: one datagram per message over UDP, or a
/// TCP stream with RFC 6587 octet-counting framing (`LEN SP MSG`), reconnecting with backoff while the buffer
/// holds what arrives meanwhile. The owning `Syslog` plugin stops it (flushing for up to 2 s) when released.
final class SyslogSender: Sendable {
    enum Transport: String, Sendable { case udp, tcp }

    let core: Core

    init(host: String, port: String, transport: Transport, capacity: Int, log: Host) throws {
        // Resolve now so a bad address refuses the config at boot; TCP resolves again on each reconnect.
        _ = try Core.resolve(host: host, port: port, transport: transport)
        core = Core(host: host, port: port, transport: transport, buffer: RecordBuffer(capacity: capacity), log: log)
        let c = core
        try startThread { c.run() }
    }

    func enqueue(_ message: [UInt8]) { core.buffer.append(message) }

    deinit {
        core.stop()
        let deadline = monotonicMs() + 2_500
        while !core.finished, monotonicMs() < deadline { usleep(5_000) }
    }

    /// What the sending thread shares with the plugin: the buffer and the stop flags.
    final class Core: Sendable {
        let host: String
        let port: String
        let transport: Transport
        let buffer: RecordBuffer<[UInt8]>
        let log: Host
        let flags = Mutex<(stopping: Bool, finished: Bool, deadline: Int64)>((false, false, 0))

        init(host: String, port: String, transport: Transport, buffer: RecordBuffer<[UInt8]>, log: Host) {
            self.host = host
            self.port = port
            self.transport = transport
            self.buffer = buffer
            self.log = log
        }

        var finished: Bool { flags.withLock { $0.finished } }

        func stop() {
            buffer.close()
            flags.withLock {
                $0.stopping = true
                $0.deadline = monotonicMs() + 2_000
            }
        }

        /// True once stopping and either the buffer is empty or the flush deadline has passed.
        func shouldExit(pendingEmpty: Bool) -> Bool {
            flags.withLock { f in f.stopping && ((pendingEmpty && buffer.count == 0) || monotonicMs() >= f.deadline) }
        }

        var stopping: Bool { flags.withLock { $0.stopping } }

        func run() {
            var socket: Int32 = -1
            var udpTarget: [UInt8] = []  // sockaddr bytes
            var pending: [[UInt8]] = []
            var backoff = Backoff(initialMs: 100, maximumMs: 10_000)
            var down = false
            var lastDropReport: Int64 = 0
            defer {
                if socket >= 0 { close(socket) }
                let lost = pending.count + buffer.take(max: Int.max).count
                buffer.countDropped(lost)
                reportDrops()
                flags.withLock { $0.finished = true }
            }
            while !shouldExit(pendingEmpty: pending.isEmpty) {
                // The first drops are logged at once, later ones at most once per 10 s.
                if monotonicMs() - lastDropReport >= 10_000, reportDrops() { lastDropReport = monotonicMs() }
                if pending.isEmpty { pending = buffer.take(max: 64) }
                if pending.isEmpty {
                    usleep(20_000)
                    continue
                }
                if socket < 0 {
                    do {
                        (socket, udpTarget) = try connect()
                        if down {
                            log.log(.info, "syslog: connected", ["address": "\(host):\(port)"])
                            down = false
                        }
                        backoff.reset()
                    } catch {
                        if !down {
                            log.log(.warning, "syslog: cannot reach the receiver; buffering",
                                ["address": "\(host):\(port)", "error": "\(error)"])
                            down = true
                        }
                        sleepUnlessStopping(backoff.next())
                        continue
                    }
                }
                while let message = pending.first {
                    let ok = transport == .udp ? sendDatagram(socket, udpTarget, message) : sendFramed(socket, message)
                    if !ok { break }
                    pending.removeFirst()
                }
                if !pending.isEmpty {
                    if transport == .tcp {
                        close(socket)
                        socket = -1
                        if !down {
                            log.log(.warning, "syslog: connection lost; reconnecting", ["address": "\(host):\(port)"])
                            down = true
                        }
                        sleepUnlessStopping(backoff.next())
                    } else {
                        // A datagram that cannot be sent (e.g. no route) is dropped, not retried forever.
                        buffer.countDropped(1)
                        pending.removeFirst()
                    }
                }
            }
        }

        func sleepUnlessStopping(_ ms: Int) {
            let until = monotonicMs() + Int64(ms)
            while monotonicMs() < until && !stopping { usleep(10_000) }
        }

        @discardableResult
        func reportDrops() -> Bool {
            let n = buffer.takeUnreportedDrops()
            guard n > 0 else { return false }
            log.metric(.counter, "dropped_total", Double(n))
            log.log(.warning, "syslog: dropped records (buffer full or receiver unreachable)",
                ["dropped": String(n), "dropped_total": String(buffer.dropped)])
            return true
        }

        struct SocketError: Error, CustomStringConvertible {
            let description: String
        }

        static func resolve(host: String, port: String, transport: Transport) throws -> [(Int32, [UInt8])] {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(transport == .udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)
            hints.ai_flags = AI_NUMERICSERV
            var res: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, port, &hints, &res)
            guard rc == 0, let first = res else {
                throw SocketError(description: "cannot resolve \(host):\(port): \(String(cString: gai_strerror(rc)))")
            }
            defer { freeaddrinfo(first) }
            var out: [(Int32, [UInt8])] = []
            var p: UnsafeMutablePointer<addrinfo>? = first
            while let a = p {
                let bytes = UnsafeRawBufferPointer(start: a.pointee.ai_addr, count: Int(a.pointee.ai_addrlen))
                out.append((a.pointee.ai_family, Array(bytes)))
                p = a.pointee.ai_next
            }
            guard !out.isEmpty else { throw SocketError(description: "no address for \(host):\(port)") }
            return out
        }

        /// A socket for the receiver: UDP unconnected (with its target address), TCP connected within 2 s.
        func connect() throws -> (Int32, [UInt8]) {
            var lastError = "no address"
            for (family, addr) in try Self.resolve(host: host, port: port, transport: transport) {
                let type = Int32(transport == .udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)
                let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard fd >= 0 else {
                    lastError = String(cString: strerror(errno))
                    continue
                }
                if transport == .udp { return (fd, addr) }
                if let error = connectTCP(fd, addr) {
                    lastError = error
                    close(fd)
                    continue
                }
                return (fd, addr)
            }
            throw SocketError(description: lastError)
        }

        /// Non-blocking connect bounded by 2 s; then blocking sends bounded by 5 s each. Nil on success.
        func connectTCP(_ fd: Int32, _ addr: [UInt8]) -> String? {
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            let rc = addr.withUnsafeBytes { b in
                Glibc.connect(fd, b.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(b.count))
            }
            if rc != 0 {
                guard errno == EINPROGRESS else { return String(cString: strerror(errno)) }
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                guard poll(&pfd, 1, 2_000) == 1 else { return "connect timed out" }
                var err: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                if err != 0 { return String(cString: strerror(err)) }
            }
            _ = fcntl(fd, F_SETFL, flags)
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            return nil
        }

        func sendDatagram(_ fd: Int32, _ target: [UInt8], _ message: [UInt8]) -> Bool {
            let n = message.withUnsafeBytes { m in
                target.withUnsafeBytes { t in
                    sendto(fd, m.baseAddress, m.count, Int32(MSG_NOSIGNAL),
                        t.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(t.count))
                }
            }
            return n == message.count
        }

        /// Sends `LEN SP MSG`. False when the peer has closed (checked first, since a send into a closed
        /// connection can still succeed once) or the send fails.
        func sendFramed(_ fd: Int32, _ message: [UInt8]) -> Bool {
            var probe: UInt8 = 0
            let r = recv(fd, &probe, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return false }
            var frame = Array("\(message.count) ".utf8)
            frame.append(contentsOf: message)
            var offset = 0
            while offset < frame.count {
                let n = frame.withUnsafeBytes { b in
                    send(fd, b.baseAddress! + offset, b.count - offset, Int32(MSG_NOSIGNAL))
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }
}

/// Runs `body` on a new detached thread.
func startThread(_ body: @escaping @Sendable () -> Void) throws {
    final class Box {
        let body: @Sendable () -> Void
        init(_ b: @escaping @Sendable () -> Void) { body = b }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { arg in
        Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, box)
    guard rc == 0 else {
        Unmanaged<Box>.fromOpaque(box).release()
        throw PluginError("syslog: cannot start the sending thread: \(String(cString: strerror(rc)))")
    }
    pthread_detach(tid)
}
