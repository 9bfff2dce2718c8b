import Foundation

// The async layer over the generated objects (Generated/Hearth.swift), a line-for-line sibling
// of the Kotlin wrapper (android/hearth/src/main/kotlin/dev/hearth/HearthApi.kt): the records,
// enums, HearthError and the objects are the generated ones; this file adds async functions and
// AsyncThrowingStreams. Cancelling the Task (or leaving the loop) cancels the turn.

extension HearthModel {
    /// Loads the GGUF model at `url` off the caller's thread. `progress` is called on the loading
    /// thread. Cancelling the Task stops the load between its steps.
    public static func load(
        from url: URL,
        options: ModelOptions = ModelOptions(),
        progress: (@Sendable (LoadProgress) -> Void)? = nil
    ) async throws -> HearthModel {
        let cancel = CancelHandle()
        let listener = progress.map { ProgressRelay(f: $0) }
        return try await withTaskCancellationHandler {
            try await Task.detached(priority: .userInitiated) {
                do {
                    return try HearthModel.open(path: url.path, options: options, progress: listener, cancel: cancel)
                } catch HearthError.Cancelled {
                    throw CancellationError()
                }
            }.value
        } onCancel: {
            cancel.cancel()
        }
    }

    /// What the model is and where it runs (backend in use and why).
    public var info: ModelInfo {
        get throws { try self.info() }
    }

    public func makeSession(options: SessionOptions = SessionOptions()) throws -> ChatSession {
        try newSession(options: options)
    }
}

private final class ProgressRelay: LoadListener, @unchecked Sendable {
    let f: @Sendable (LoadProgress) -> Void
    init(f: @escaping @Sendable (LoadProgress) -> Void) { self.f = f }
    func onProgress(progress: LoadProgress) throws { f(progress) }
}

extension Message {
    public static func user(_ text: String) -> Message {
        Message(role: .user, content: text)
    }

    /// The result of the tool call `callId` (`ChatEvent.toolCall(call).id`) of tool `name`.
    public static func toolResult(name: String, resultJson: String, callId: String? = nil) -> Message {
        Message(role: .tool, content: resultJson, toolCallId: callId, name: name)
    }
}

/// The answer of one turn, collected.
public struct Response: Sendable {
    public let text: String
    public let thinking: String?
    public let toolCalls: [ToolCall]
    public let stats: TurnStats
}

extension ChatSession {
    /// Streams the answer to `text`. Iterating starts the turn on an engine-owned thread;
    /// cancelling the Task or leaving the loop cancels it within one token and rolls the
    /// session back exactly. Ends with `.done`.
    public func streamResponse(to text: String, options: GenerateOptions = GenerateOptions()) -> AsyncThrowingStream<ChatEvent, Error> {
        streamResponse(to: Message.user(text), options: options)
    }

    /// Streams the answer to `message` (a user message or `Message.toolResult`).
    public func streamResponse(to message: Message, options: GenerateOptions = GenerateOptions()) -> AsyncThrowingStream<ChatEvent, Error> {
        turn(.send(message: message), options)
    }

    /// Streams a new answer to the last message, replacing the last answer.
    public func streamRegenerate(options: GenerateOptions = GenerateOptions()) -> AsyncThrowingStream<ChatEvent, Error> {
        turn(.regenerate, options)
    }

    /// Streams the answer to `text` put in place of the last user message: what followed that
    /// message is dropped and the cache up to it is reused.
    public func streamEdit(to text: String, options: GenerateOptions = GenerateOptions()) -> AsyncThrowingStream<ChatEvent, Error> {
        turn(.edit(text: text), options)
    }

    public func respond(to text: String, options: GenerateOptions = GenerateOptions()) async throws -> Response {
        try await collectResponse(streamResponse(to: text, options: options))
    }

    public func respond(to message: Message, options: GenerateOptions = GenerateOptions()) async throws -> Response {
        try await collectResponse(streamResponse(to: message, options: options))
    }

    public func regenerate(options: GenerateOptions = GenerateOptions()) async throws -> Response {
        try await collectResponse(streamRegenerate(options: options))
    }

    public func edit(to text: String, options: GenerateOptions = GenerateOptions()) async throws -> Response {
        try await collectResponse(streamEdit(to: text, options: options))
    }

    private func turn(_ input: ChatInput, _ options: GenerateOptions) -> AsyncThrowingStream<ChatEvent, Error> {
        AsyncThrowingStream { continuation in
            let listener = StreamRelay(continuation: continuation)
            do {
                let handle = try generate(input: input, options: options, listener: listener)
                // uniffi async calls do not stop with their Task (uniffi-rs#2771): cancel here.
                continuation.onTermination = { _ in handle.cancel() }
            } catch {
                continuation.finish(throwing: error)
            }
        }
    }
}

private final class StreamRelay: GenerationListener, @unchecked Sendable {
    let continuation: AsyncThrowingStream<ChatEvent, Error>.Continuation
    init(continuation: AsyncThrowingStream<ChatEvent, Error>.Continuation) { self.continuation = continuation }

    func onEvents(events: [ChatEvent]) throws -> Bool {
        for e in events {
            if case .terminated = continuation.yield(e) { return false }
        }
        return true
    }

    func onFinish(stats: TurnStats?, error: HearthError?) throws {
        if case .Cancelled? = error {
            continuation.finish(throwing: CancellationError())
        } else if let error = error {
            continuation.finish(throwing: error)
        } else if let stats = stats, stats.stopReason != .cancelled {
            continuation.yield(.done(stats: stats))
            continuation.finish()
        } else {
            continuation.finish(throwing: CancellationError())
        }
    }
}

private func collectResponse(_ stream: AsyncThrowingStream<ChatEvent, Error>) async throws -> Response {
    var text = ""
    var thinking: String?
    var calls: [ToolCall] = []
    var stats: TurnStats?
    for try await e in stream {
        switch e {
        case .text(let t): text += t
        case .thinking(let t): thinking = (thinking ?? "") + t
        case .toolCall(let call): calls.append(call)
        case .toolCallError(let raw, _): text += raw
        case .done(let s): stats = s
        }
    }
    guard let done = stats else { throw HearthError.Internal(message: "the turn ended without its figures") }
    return Response(text: text, thinking: thinking, toolCalls: calls, stats: done)
}

extension ModelStore {
    /// Downloads (or resumes) `model`, streaming progress; finishes once the file is verified,
    /// and its last item's `path` is the installed file's (`nil` in every other item).
    /// Cancelling the Task stops the download and keeps the partial file for a later resume.
    public func download(_ model: ModelRef) -> AsyncThrowingStream<DownloadProgress, Error> {
        AsyncThrowingStream { continuation in
            let cancel = CancelHandle()
            let listener = DownloadRelay(continuation: continuation)
            let work = Task.detached {
                do {
                    _ = try self.download(model: model, progress: listener, cancel: cancel)
                    continuation.finish()
                } catch HearthError.Cancelled {
                    continuation.finish(throwing: CancellationError())
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in
                cancel.cancel()
                work.cancel()
            }
        }
    }
}

private final class DownloadRelay: DownloadListener, @unchecked Sendable {
    let continuation: AsyncThrowingStream<DownloadProgress, Error>.Continuation
    init(continuation: AsyncThrowingStream<DownloadProgress, Error>.Continuation) { self.continuation = continuation }
    func onProgress(progress: DownloadProgress) throws { continuation.yield(progress) }
}
