import Foundation

/// Swift entry points over the generated bindings (`Generated/Hearth.swift`).
public enum HearthSDK {
    /// Version of the native library that is linked.
    public static var version: String { sdkVersion() }

    /// Describes the GGUF model at `path` without loading its weights, off the caller's actor
    /// (the engine maps and validates the file, which must not block the main thread).
    /// - Throws: `HearthError.Io` if the file cannot be read, `.InvalidModel` if it is not a GGUF
    ///   model, `.UnsupportedModel` for another architecture.
    public static func modelInfo(path: String) async throws -> ModelInfo {
        try await Task.detached(priority: .userInitiated) {
            try Hearth.modelInfo(path: path)
        }.value
    }

    /// How much the engine logs (os_log with the `oslog` feature, else stderr).
    public static func setLogLevel(_ level: LogLevel) {
        Hearth.setLogLevel(level: level)
    }
}
