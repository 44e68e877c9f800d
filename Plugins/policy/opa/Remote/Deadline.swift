import Synchronization

/// Runs `work` in its own task and returns when it finishes, when `deadline` passes, or when the caller is
/// cancelled, whichever comes first; the work task is then cancelled and left to wind down on its own.
///
/// The HTTP client's own deadline covers a request until its response head arrives, not the body, and a
/// task group would wait for every child to acknowledge cancellation; this returns on time regardless, so a
/// stuck server can never hold an authorization past `timeout_ms`.
func runUntil(_ deadline: ContinuousClock.Instant, _ work: @escaping @Sendable () async -> Void) async {
    let gate = Gate()
    await withTaskCancellationHandler {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            gate.install(continuation)
            let worker = Task {
                await work()
                gate.open()
            }
            let timer = Task {
                try? await Task.sleep(until: deadline, clock: .continuous)
                gate.open()
            }
            gate.attach([worker, timer])
        }
    } onCancel: {
        gate.open()
    }
}

/// Resumes one continuation exactly once, on the first `open()`, and then cancels the attached tasks
/// (the worker that lost the race, or the timer that is no longer needed).
private final class Gate: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Void, Never>?
        var tasks: [Task<Void, Never>] = []
        var opened = false
    }
    private let state = Mutex(State())

    func install(_ continuation: CheckedContinuation<Void, Never>) {
        let resumeNow = state.withLock { s -> Bool in
            if s.opened { return true }
            s.continuation = continuation
            return false
        }
        if resumeNow { continuation.resume() }
    }

    func attach(_ tasks: [Task<Void, Never>]) {
        let cancelNow = state.withLock { s -> Bool in
            if s.opened { return true }
            s.tasks = tasks
            return false
        }
        if cancelNow { tasks.forEach { $0.cancel() } }
    }

    func open() {
        let (continuation, tasks) = state.withLock { s -> (CheckedContinuation<Void, Never>?, [Task<Void, Never>]) in
            if s.opened { return (nil, []) }
            s.opened = true
            defer {
                s.continuation = nil
                s.tasks = []
            }
            return (s.continuation, s.tasks)
        }
        continuation?.resume()
        tasks.forEach { $0.cancel() }
    }
}
