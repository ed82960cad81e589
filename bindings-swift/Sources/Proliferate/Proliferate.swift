// The hand-written layer over the generated bindings: async sequences of updates and events
// (cancelling the consuming task cancels the subscription), and Swift-style conveniences.

import Foundation

extension ProliferateError {
    /// The protocol's stable machine code, the same in every language.
    public var code: String {
        switch self {
        case let .Api(code, _, _), let .Transport(code, _), let .Timeout(code, _),
            let .InvalidResponse(code, _), let .Closed(code, _), let .Config(code, _):
            return code
        }
    }
}

/// Feeds a subscription into an `AsyncThrowingStream`.
private final class StreamListener: UpdateListener, @unchecked Sendable {
    let continuation: AsyncThrowingStream<Update, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<Update, Error>.Continuation) {
        self.continuation = continuation
    }

    func onUpdate(update: Update) { continuation.yield(update) }
    func onError(error: ProliferateError) { continuation.finish(throwing: error) }
    func onClosed() { continuation.finish() }
}

extension Connection {
    /// Every update until the connection closes: `connected`, each event once and in order,
    /// `replayDone`, `reset`, `presence`, `presenceChanged`, `reconnecting`. Ending the
    /// iteration, or cancelling its task, cancels the subscription. Read a connection through
    /// one sequence at a time.
    public func updates() -> AsyncThrowingStream<Update, Error> {
        AsyncThrowingStream { continuation in
            let subscribing = Task {
                let handle = await self.subscribe(listener: StreamListener(continuation))
                continuation.onTermination = { _ in handle.cancel() }
            }
            _ = subscribing
        }
    }

    /// Each durable event once, in order, across reconnects.
    public func events() -> AsyncThrowingStream<EventEnvelope, Error> {
        let updates = self.updates()
        return AsyncThrowingStream { continuation in
            let forwarding = Task {
                do {
                    for try await update in updates {
                        if case let .event(envelope) = update { continuation.yield(envelope) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in forwarding.cancel() }
        }
    }
}

extension Client {
    /// A client authenticated with a bearer token.
    public convenience init(baseURL: String, token: String, source: String? = nil) throws {
        try self.init(options: ClientOptions(baseUrl: baseURL, token: token, source: source))
    }
}
