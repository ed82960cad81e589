// The hand-written layer over the generated bindings: async sequences of updates and events
// that read nothing ahead, and Swift-style conveniences.

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

/// A connection's updates as an async sequence. Each step takes one update from the connection
/// and reads nothing ahead, so a loop that stops early leaves the rest to the next reader, and
/// `lastSeq` is always the last event the loop was given.
public struct Updates: AsyncSequence, Sendable {
    public typealias Element = Update

    let connection: Connection

    /// Takes the connection's updates one at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let connection: Connection

        /// The next update, or nil once the connection is closed. A failure is final.
        public mutating func next() async throws -> Update? {
            try await connection.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(connection: connection)
    }
}

extension Connection {
    /// Every update until the connection closes: `connected`, each event once and in order,
    /// `replayDone`, `reset`, `presence`, `presenceChanged`, `reconnecting`. Nothing is read
    /// ahead: breaking out of the loop leaves the next update to whoever reads next.
    public func updates() -> Updates {
        Updates(connection: self)
    }

    /// Each durable event once, in order, across reconnects.
    public func events() -> AsyncThrowingCompactMapSequence<Updates, EventEnvelope> {
        updates().compactMap { update in
            if case let .event(envelope) = update { return envelope }
            return nil
        }
    }
}

extension Client {
    /// A client authenticated with a bearer token.
    public convenience init(baseURL: String, token: String, source: String? = nil) throws {
        try self.init(options: ClientOptions(baseUrl: baseURL, token: token, source: source))
    }
}
