import Foundation
import Hearth
import Observation

// Mirrors android/app/src/main/kotlin/dev/hearth/chat/logic/ConversationStore.kt.

/// A conversation as stored: its messages (as shown) and the settings it runs with.
struct Conversation: Identifiable, Equatable, Codable, Sendable {
    var id: String
    var title: String
    var createdAtMs: Int64
    var updatedAtMs: Int64
    var settings: ChatSettings
    var messages: [ChatMessage] = []
    /// The model file it was last used with (its name in the models directory).
    var modelName: String? = nil
}

struct ConversationSummary: Identifiable, Equatable, Sendable {
    let id: String
    let title: String
    let updatedAtMs: Int64
    let messageCount: Int
}

/// Conversations on the device, one JSON file each in `directory` (`<id>.json`), plus the SDK's
/// saved session (`<id>.session`: the history and its token cache, written by `saveCache` when
/// the app goes to the background, so that reopening a long chat does not prefill it again).
@MainActor
@Observable
final class ConversationStore {
    private(set) var conversations: [ConversationSummary] = []
    private let directory: URL
    private let clock: () -> Int64

    init(directory: URL, clock: @escaping () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.directory = directory
        self.clock = clock
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        refresh()
    }

    func refresh() {
        let files = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []
        conversations = files.filter { $0.pathExtension == "json" }
            .compactMap { read($0) }
            .sorted { $0.updatedAtMs > $1.updatedAtMs }
            .map { ConversationSummary(id: $0.id, title: $0.title, updatedAtMs: $0.updatedAtMs, messageCount: $0.messages.count) }
    }

    func create(settings: ChatSettings, title: String = "New chat") -> Conversation {
        let now = clock()
        let c = Conversation(id: UUID().uuidString, title: title, createdAtMs: now, updatedAtMs: now, settings: settings)
        write(c)
        return c
    }

    func load(_ id: String) -> Conversation? { read(jsonFile(id)) }

    /// Stores `conversation` with new `messages`; a "New chat" is titled by its first message.
    @discardableResult
    func update(_ conversation: Conversation, messages: [ChatMessage], modelName: String? = nil) -> Conversation {
        var c = conversation
        if c.title == "New chat", let first = messages.first(where: { $0.author == .user })?.text {
            c.title = ConversationStore.title(from: first)
        }
        c.messages = messages
        c.updatedAtMs = clock()
        if let modelName { c.modelName = modelName }
        write(c)
        return c
    }

    @discardableResult
    func rename(_ id: String, to title: String) -> Conversation? {
        guard var c = load(id) else { return nil }
        let t = title.trimmingCharacters(in: .whitespacesAndNewlines)
        if !t.isEmpty { c.title = t }
        c.updatedAtMs = clock()
        write(c)
        return c
    }

    func delete(_ id: String) {
        try? FileManager.default.removeItem(at: jsonFile(id))
        try? FileManager.default.removeItem(at: cacheFile(id))
        refresh()
    }

    func cacheFile(_ id: String) -> URL { directory.appendingPathComponent("\(id).session") }

    /// Saves the SDK session with its token cache (call it when the app goes to the background),
    /// off the main actor; returns once written.
    func saveCache(_ id: String, session: ChatSession) async throws {
        let path = cacheFile(id).path
        try await Task.detached(priority: .utility) {
            try session.save(path: path, includeCache: true)
        }.value
    }

    /// The SDK session of `conversation` on `model`: restored from its saved cache when there is
    /// one for this model (the next turn then reuses it), otherwise a new session with the stored
    /// history pushed into it (the next turn prefills it).
    func openSession(model: HearthModel, conversation: Conversation, options: SessionOptions) throws -> ChatSession {
        let cache = cacheFile(conversation.id)
        let history = ConversationStore.history(conversation.messages)
        if FileManager.default.fileExists(atPath: cache.path) {
            if let restored = try? ChatSession.restore(model: model, path: cache.path),
               (try? restored.messages().count) == history.count {
                return restored
            }
            // A cache from another model or an older SDK: rebuild from the messages below.
            try? FileManager.default.removeItem(at: cache)
        }
        let session = try model.makeSession(options: options)
        if !history.isEmpty { try session.appendMessages(messages: history) }
        return session
    }

    private func jsonFile(_ id: String) -> URL { directory.appendingPathComponent("\(id).json") }

    private func write(_ c: Conversation) {
        if let data = try? JSONEncoder().encode(c) {
            try? data.write(to: jsonFile(c.id), options: .atomic)
        }
        refresh()
    }

    private func read(_ url: URL) -> Conversation? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(Conversation.self, from: data)
    }

    static func title(from text: String) -> String {
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init)?
            .trimmingCharacters(in: .whitespaces) ?? ""
        return line.count <= 40 ? line : String(line.prefix(39)).trimmingCharacters(in: .whitespaces) + "…"
    }

    /// The SDK history of shown messages: tool results come from the cards.
    nonisolated static func history(_ messages: [ChatMessage]) -> [Message] {
        messages.flatMap { m -> [Message] in
            switch m.author {
            case .user:
                return [Message(role: .user, content: m.text)]
            case .assistant:
                let calls = m.toolCards.map { ToolCall(id: $0.callId, name: $0.name, argumentsJson: $0.argumentsJson) }
                let answer = Message(role: .assistant, content: m.text, thinking: m.thinking.isEmpty ? nil : m.thinking, toolCalls: calls)
                let results = m.toolCards.compactMap { card in
                    card.resultJson.map { Message(role: .tool, content: $0, toolCallId: card.callId, name: card.name) }
                }
                return [answer] + results
            }
        }
    }
}
