import Foundation
import Hearth
import Observation

// Mirrors android/app/src/main/kotlin/dev/hearth/chat/logic/SettingsModel.kt type for type.

/// What the user chose in Settings; also stored with each conversation.
struct ChatSettings: Equatable, Codable, Sendable {
    /// The system prompt.
    var instructions: String = ChatSettings.defaultInstructions
    var temperature: Float = 0.3
    var topP: Float = 1.0
    /// Most thinking tokens per answer; nil = the model's default (unlimited).
    var thinkingBudget: Int32? = nil
    var contextLength: Int32 = 4096
    var maxTokens: Int32 = 1024
    var backend: Backend = .auto
    var toolsEnabled: Bool = true

    static let defaultInstructions = "You are a helpful assistant running privately on this device."
    static let contextLengths: [Int32] = [2048, 4096, 8192, 16384, 32768]

    init() {}

    /// Options of one turn. `thinkingBudget` is the SDK field agreed in this release.
    func generateOptions(seed: Int64 = 0) -> GenerateOptions {
        GenerateOptions(temperature: temperature, maxTokens: maxTokens, seed: seed, topP: topP, thinkingBudget: thinkingBudget)
    }

    func sessionOptions(tools: [ToolSpec]) -> SessionOptions {
        SessionOptions(
            instructions: instructions.isEmpty ? nil : instructions,
            tools: toolsEnabled ? tools : [],
            contextLength: contextLength
        )
    }

    /// `cacheDir`: where the SDK remembers a GPU that failed (the app's caches folder).
    func modelOptions(cacheDir: String? = nil) -> ModelOptions {
        ModelOptions(backend: backend, contextLength: contextLength, cacheDir: cacheDir)
    }

    /// Clamped into the ranges the SDK accepts.
    func validated() -> ChatSettings {
        var s = self
        s.temperature = min(max(temperature, 0), 2)
        s.topP = min(max(topP, 0.05), 1)
        s.thinkingBudget = thinkingBudget.map { min(max($0, 0), 32768) }
        s.contextLength = min(max(contextLength, 512), 131_072)
        s.maxTokens = min(max(maxTokens, 16), 8192)
        return s
    }

    // Backend is a generated enum without Codable: stored by name.
    enum CodingKeys: String, CodingKey {
        case instructions, temperature, topP, thinkingBudget, contextLength, maxTokens, backend, toolsEnabled
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ChatSettings()
        instructions = try c.decodeIfPresent(String.self, forKey: .instructions) ?? d.instructions
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature) ?? d.temperature
        topP = try c.decodeIfPresent(Float.self, forKey: .topP) ?? d.topP
        thinkingBudget = try c.decodeIfPresent(Int32.self, forKey: .thinkingBudget)
        contextLength = try c.decodeIfPresent(Int32.self, forKey: .contextLength) ?? d.contextLength
        maxTokens = try c.decodeIfPresent(Int32.self, forKey: .maxTokens) ?? d.maxTokens
        switch try c.decodeIfPresent(String.self, forKey: .backend) {
        case "GPU": backend = .gpu
        case "CPU": backend = .cpu
        default: backend = .auto
        }
        toolsEnabled = try c.decodeIfPresent(Bool.self, forKey: .toolsEnabled) ?? d.toolsEnabled
        self = validated()
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(instructions, forKey: .instructions)
        try c.encode(temperature, forKey: .temperature)
        try c.encode(topP, forKey: .topP)
        try c.encodeIfPresent(thinkingBudget, forKey: .thinkingBudget)
        try c.encode(contextLength, forKey: .contextLength)
        try c.encode(maxTokens, forKey: .maxTokens)
        try c.encode(backendName, forKey: .backend)
        try c.encode(toolsEnabled, forKey: .toolsEnabled)
    }

    var backendName: String {
        switch backend {
        case .auto: return "AUTO"
        case .gpu: return "GPU"
        case .cpu: return "CPU"
        }
    }
}

/// Settings as observable state, persisted to `file` (JSON) on every change.
@MainActor
@Observable
final class SettingsModel {
    private(set) var settings: ChatSettings
    private let file: URL

    init(file: URL) {
        self.file = file
        if let data = try? Data(contentsOf: file), let s = try? JSONDecoder().decode(ChatSettings.self, from: data) {
            settings = s
        } else {
            settings = ChatSettings()
        }
    }

    func update(_ change: (inout ChatSettings) -> Void) {
        var s = settings
        change(&s)
        settings = s.validated()
        if let data = try? JSONEncoder().encode(settings) {
            try? FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? data.write(to: file, options: .atomic)
        }
    }

    /// Backend and context apply when the model is loaded; the rest on the next turn.
    func needsReload(loadedWith: ChatSettings) -> Bool {
        settings.backend != loadedWith.backend || settings.contextLength != loadedWith.contextLength
    }
}

/// "What runs where and why", for Settings: the choice and the SDK's report of the loaded model.
func backendReport(choice: Backend, info: ModelInfo?) -> String {
    let chosen: String
    switch choice {
    case .auto: chosen = "Auto (the GPU if it passes its self-test, else the CPU)"
    case .gpu: chosen = "GPU"
    case .cpu: chosen = "CPU"
    }
    guard let inUse = info?.backend else { return "Chosen: \(chosen). No model loaded." }
    return "Chosen: \(chosen). In use: \(inUse)."
}
