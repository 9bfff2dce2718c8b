import Foundation
import Hearth
import Observation

// Mirrors android/app/src/main/kotlin/dev/hearth/chat/logic/ChatController.kt type for type.

/// Where a conversation's turns come from: a `ChatSession` in the app (`SessionTurns`).
protocol TurnSource: Sendable {
    func send(_ message: Message, options: GenerateOptions) -> AsyncThrowingStream<ChatEvent, Error>
    func regenerate(options: GenerateOptions) -> AsyncThrowingStream<ChatEvent, Error>
    /// Replaces the last user message with `text` and answers it (the SDK reuses the cache up to it).
    func edit(_ text: String, options: GenerateOptions) -> AsyncThrowingStream<ChatEvent, Error>
    /// Adds messages to the history without answering them.
    func append(_ messages: [Message]) throws
}

/// The SDK session as a `TurnSource`.
struct SessionTurns: TurnSource {
    let session: ChatSession
    func send(_ message: Message, options: GenerateOptions) -> AsyncThrowingStream<ChatEvent, Error> {
        session.streamResponse(to: message, options: options)
    }
    func regenerate(options: GenerateOptions) -> AsyncThrowingStream<ChatEvent, Error> {
        session.streamRegenerate(options: options)
    }
    func edit(_ text: String, options: GenerateOptions) -> AsyncThrowingStream<ChatEvent, Error> {
        session.streamEdit(to: text, options: options)
    }
    func append(_ messages: [Message]) throws {
        try session.appendMessages(messages: messages)
    }
}

enum Author: String, Codable, Sendable { case user = "USER", assistant = "ASSISTANT" }

/// A tool call the model made, and what the app's tool answered.
struct ToolCard: Equatable, Codable, Sendable {
    var callId: String
    var name: String
    var argumentsJson: String
    var resultJson: String? = nil
    var error: String? = nil
}

/// One answer's figures, for the stats line under it.
struct MessageStats: Equatable, Codable, Sendable {
    var promptTokens: Int
    var cachedTokens: Int
    var generatedTokens: Int
    var timeToFirstTokenMs: Double
    var prefillTokensPerSecond: Double
    var decodeTokensPerSecond: Double
    /// `StopReason` by name (the generated enum is not Codable).
    var stopReason: String
    var backend: String?

    init(_ s: TurnStats, backend: String?) {
        promptTokens = Int(s.promptTokens)
        cachedTokens = Int(s.cachedTokens)
        generatedTokens = Int(s.generatedTokens)
        timeToFirstTokenMs = s.timeToFirstTokenMs
        prefillTokensPerSecond = s.prefillTokensPerSecond
        decodeTokensPerSecond = s.decodeTokensPerSecond
        switch s.stopReason {
        case .endOfTurn: stopReason = "END_OF_TURN"
        case .maxTokens: stopReason = "MAX_TOKENS"
        case .stopString: stopReason = "STOP_STRING"
        case .contextFull: stopReason = "CONTEXT_FULL"
        case .cancelled: stopReason = "CANCELLED"
        }
        self.backend = backend
    }

    /// e.g. "TTFT 180 ms · prefill 410 tok/s · decode 38 tok/s · 120/130 cached · gpu".
    var summary: String {
        var s = "TTFT \(Int(timeToFirstTokenMs)) ms · prefill \(Int(prefillTokensPerSecond)) tok/s"
        s += " · decode \(Int(decodeTokensPerSecond)) tok/s · \(cachedTokens)/\(promptTokens) cached"
        if let backend { s += " · \(backend)" }
        if stopReason == "MAX_TOKENS" { s += " · cut at the token limit" }
        if stopReason == "CONTEXT_FULL" { s += " · the context is full" }
        return s
    }
}

/// A message as the chat screen shows it (tool results live in their `ToolCard`).
struct ChatMessage: Identifiable, Equatable, Codable, Sendable {
    var id: Int64
    var author: Author
    var text: String = ""
    var thinking: String = ""
    /// Thinking tokens: the SDK delivers one event batch per token, adjacent text merged.
    var thinkingTokens: Int = 0
    var toolCards: [ToolCard] = []
    var stats: MessageStats? = nil
    var streaming: Bool = false
    /// Text the model meant as a tool call that did not parse.
    var malformedToolCall: String? = nil
}

enum ThermalLevel: Int, Comparable, Sendable {
    case nominal, fair, serious, critical
    static func < (a: ThermalLevel, b: ThermalLevel) -> Bool { a.rawValue < b.rawValue }
}

struct ChatUIState: Equatable, Sendable {
    var messages: [ChatMessage] = []
    /// The input field. A stopped turn puts its text back here.
    var draft: String = ""
    var generating = false
    /// A turn was interrupted (backgrounded, too hot, memory) and `resume()` continues it.
    var canResume = false
    /// A plain-language error with the next step.
    var error: String? = nil
    /// A visible notice (e.g. "Paused: the phone is hot").
    var notice: String? = nil
    var thermal: ThermalLevel = .nominal

    var canRegenerate: Bool { !generating && messages.last?.author == .assistant }
    var canEdit: Bool { !generating && messages.contains { $0.author == .user } }
}

/// SDK events → UI state. One turn at a time: `send`, `regenerate`, `editLast`; `stop` cancels
/// the Task (the SDK rolls the turn back exactly; the UI goes back to the state before it and the
/// draft returns to the input). Demo tool calls run locally and their results are sent back until
/// the model answers without one (at most `maxToolRounds` rounds per message).
@MainActor
@Observable
final class ChatController {
    private(set) var state: ChatUIState
    private let turns: TurnSource
    private let settings: () -> ChatSettings
    private let backend: String?
    private let tools: DemoTools
    private let seeds: () -> Int64
    private let onTurnFinished: ([ChatMessage]) -> Void
    private let maxToolRounds: Int

    private var task: Task<Void, Never>?
    private var nextId: Int64
    private var stopNotice: String?
    /// What `resume()` continues: a tool result whose answer was interrupted, or a user message.
    private var resumeWith: (() -> Void)?

    static let seriousPacingNs: UInt64 = 60_000_000

    init(
        turns: TurnSource,
        settings: @escaping () -> ChatSettings,
        initial: [ChatMessage] = [],
        backend: String? = nil,
        tools: DemoTools = DemoTools(),
        seeds: @escaping () -> Int64 = { Int64.random(in: Int64.min...Int64.max) },
        onTurnFinished: @escaping ([ChatMessage]) -> Void = { _ in },
        maxToolRounds: Int = 4
    ) {
        self.turns = turns
        self.settings = settings
        self.backend = backend
        self.tools = tools
        self.seeds = seeds
        self.onTurnFinished = onTurnFinished
        self.maxToolRounds = maxToolRounds
        state = ChatUIState(messages: initial)
        nextId = (initial.map(\.id).max() ?? 0) + 1
    }

    func setDraft(_ text: String) { state.draft = text }

    func dismissError() {
        state.error = nil
        state.notice = nil
    }

    /// Sends `text` (default: the draft). Returns false if a turn is running or the text is blank.
    @discardableResult
    func send(_ text: String? = nil) -> Bool {
        let text = text ?? state.draft
        guard !state.generating, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return false }
        let user = ChatMessage(id: makeId(), author: .user, text: text)
        let turns = self.turns
        start(before: state.messages, shown: state.messages + [user], draftOnStop: text) { o in
            turns.send(Message.user(text), options: o)
        }
        return true
    }

    /// A new answer to the last message, replacing the last answer.
    @discardableResult
    func regenerate() -> Bool {
        guard state.canRegenerate else { return false }
        let turns = self.turns
        start(before: state.messages, shown: Array(state.messages.dropLast()), draftOnStop: nil) { o in
            turns.regenerate(options: o)
        }
        return true
    }

    /// Replaces the last user message with `text` and answers it; later messages are dropped.
    @discardableResult
    func editLast(_ text: String) -> Bool {
        guard !state.generating, let i = state.messages.lastIndex(where: { $0.author == .user }),
              !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return false }
        let shown = Array(state.messages.prefix(i)) + [ChatMessage(id: makeId(), author: .user, text: text)]
        let turns = self.turns
        start(before: state.messages, shown: shown, draftOnStop: text) { o in turns.edit(text, options: o) }
        return true
    }

    /// Cancels the running turn; the session and the screen go back to before it.
    func stop() { interrupt(nil) }

    /// Stops the running turn for a reason outside the chat (background, heat, memory) with a
    /// visible `notice`; `resume()` continues.
    func interrupt(_ notice: String?) {
        guard let task, state.generating else { return }
        stopNotice = notice
        task.cancel()
    }

    /// Continues an interrupted turn.
    @discardableResult
    func resume() -> Bool {
        guard let again = resumeWith, !state.generating else { return false }
        resumeWith = nil
        again()
        return true
    }

    /// The device's thermal state: serious paces generation, critical pauses it (resumable).
    func setThermal(_ level: ThermalLevel) {
        state.thermal = level
        if level == .critical { interrupt("Paused: the device is too hot. Resume when it has cooled down.") }
    }

    /// Waits for the running turn (and its tool rounds) to end.
    func awaitIdle() async { await task?.value }

    private func makeId() -> Int64 {
        defer { nextId += 1 }
        return nextId
    }

    private func start(
        before: [ChatMessage],
        shown: [ChatMessage],
        draftOnStop: String?,
        first: @escaping (GenerateOptions) -> AsyncThrowingStream<ChatEvent, Error>
    ) {
        stopNotice = nil
        resumeWith = nil
        let answer = ChatMessage(id: makeId(), author: .assistant, streaming: true)
        state.messages = shown + [answer]
        state.generating = true
        state.canResume = false
        state.error = nil
        state.notice = nil
        if draftOnStop != nil { state.draft = "" }
        task = Task { await self.runTurn(before: before, draftOnStop: draftOnStop, firstAnswerId: answer.id, first: first) }
    }

    private func runTurn(
        before: [ChatMessage],
        draftOnStop: String?,
        firstAnswerId: Int64,
        first: (GenerateOptions) -> AsyncThrowingStream<ChatEvent, Error>
    ) async {
        var rollbackTo = before
        var restoreDraft = draftOnStop
        var answerId = firstAnswerId
        var stream = first(settings().generateOptions(seed: seeds()))
        var rounds = 0
        // Set while a tool result is being answered: what resume() sends again.
        var continuation: Message?
        while true {
            var finished = false
            do {
                for try await e in stream {
                    apply(answerId, e)
                    if case .done = e { finished = true }
                    if state.thermal == .serious { try? await Task.sleep(nanoseconds: ChatController.seriousPacingNs) }
                }
                // A cancelled Task ends the stream without `.done`: the SDK rolled the turn back.
                if !finished { throw CancellationError() }
            } catch let e as HearthError {
                state.messages = rollbackTo
                state.generating = false
                state.error = describe(e)
                if let d = restoreDraft { state.draft = d }
                return
            } catch {
                let notice = stopNotice
                let draft = restoreDraft
                if notice == nil {
                    resumeWith = nil
                } else if let again = continuation {
                    resumeWith = { [weak self] in self?.continueWith(again) }
                } else if let draft {
                    resumeWith = { [weak self] in self?.send(draft) }
                } else {
                    resumeWith = nil
                }
                state.messages = rollbackTo
                state.generating = false
                state.notice = notice
                state.canResume = resumeWith != nil
                if let draft { state.draft = draft }
                return
            }
            let calls = finish(answerId)
            if calls.isEmpty || rounds >= maxToolRounds { break }
            rounds += 1
            // Execute the calls locally and show their results, then answer them.
            let results = calls.map { c in (c, tools.execute(ToolCall(id: c.callId, name: c.name, argumentsJson: c.argumentsJson))) }
            update(answerId) { m in
                m.toolCards = m.toolCards.map { card in
                    guard let r = results.first(where: { $0.0.callId == card.callId })?.1 else { return card }
                    var c = card
                    c.resultJson = r.resultJson
                    c.error = r.error
                    return c
                }
            }
            let messages = results.map { c, r in Message.toolResult(name: c.name, resultJson: r.resultJson, callId: c.callId) }
            do {
                if messages.count > 1 { try turns.append(Array(messages.dropLast())) }
            } catch let e as HearthError {
                state.generating = false
                state.error = describe(e)
                return
            } catch {
                state.generating = false
                return
            }
            let last = messages[messages.count - 1]
            continuation = last
            rollbackTo = state.messages
            restoreDraft = nil
            let next = ChatMessage(id: makeId(), author: .assistant, streaming: true)
            answerId = next.id
            state.messages.append(next)
            stream = turns.send(last, options: settings().generateOptions(seed: seeds()))
        }
        state.generating = false
        onTurnFinished(state.messages)
    }

    /// Answers a tool result again after an interruption.
    private func continueWith(_ result: Message) {
        let turns = self.turns
        start(before: state.messages, shown: state.messages, draftOnStop: nil) { o in turns.send(result, options: o) }
    }

    private func apply(_ id: Int64, _ e: ChatEvent) {
        switch e {
        case .text(let t): update(id) { $0.text += t }
        case .thinking(let t): update(id) { $0.thinking += t; $0.thinkingTokens += 1 }
        case .toolCall(let call):
            update(id) { $0.toolCards.append(ToolCard(callId: call.id, name: call.name, argumentsJson: call.argumentsJson)) }
        case .toolCallError(let raw, _): update(id) { $0.malformedToolCall = raw; $0.text += raw }
        case .done(let stats): update(id) { $0.stats = MessageStats(stats, backend: self.backend) }
        }
    }

    /// Ends the streaming of message `id`; returns its tool calls.
    private func finish(_ id: Int64) -> [ToolCard] {
        update(id) { $0.streaming = false }
        return state.messages.first { $0.id == id }?.toolCards ?? []
    }

    private func update(_ id: Int64, _ change: (inout ChatMessage) -> Void) {
        guard let i = state.messages.firstIndex(where: { $0.id == id }) else { return }
        change(&state.messages[i])
    }
}

/// An SDK error in plain language, with the next step.
func describe(_ e: HearthError) -> String {
    switch e {
    case .ContextOverflow:
        return "This conversation is longer than the model's context. Start a new chat, or raise the context length in Settings."
    case .InsufficientMemory:
        return "Not enough memory for this model. Close other apps, lower the context length, or pick a smaller model."
    case .GpuFault:
        return "The GPU failed. Choose CPU in Settings (or Auto) and send again."
    case .InvalidModel(let m), .UnsupportedModel(let m):
        return "This file is not a model Hearth can run (\(m)). Pick another model."
    case .Io(let m):
        return "A file could not be read or written (\(m)). Check free storage."
    case .Download(let m):
        return "The download failed (\(m)). Check the connection and resume."
    case .InvalidArgument(let m):
        return "A setting is out of range (\(m)). Check Settings."
    case .Cancelled:
        return "Stopped."
    case .Internal(let m):
        return "Something went wrong inside Hearth (\(m)). Please report it."
    }
}
