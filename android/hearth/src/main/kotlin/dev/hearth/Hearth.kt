package dev.hearth

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * Kotlin entry points over the generated bindings (`hearth_ffi.kt`).
 *
 * No Android API in this folder's hand-written files: they are also compiled and tested on a
 * plain JVM (android/jvm, scripts/test-kotlin.sh).
 */
object Hearth {
    /** Version of the native library that is loaded. */
    val version: String
        get() = sdkVersion()

    /**
     * Describes the GGUF model at [path] without loading its weights. Runs on [Dispatchers.IO]:
     * it maps and validates the file, which must not happen on the main thread.
     *
     * @throws HearthException.Io if the file cannot be read, [HearthException.InvalidModel] if it
     *   is not a GGUF model, [HearthException.UnsupportedModel] for another architecture.
     */
    suspend fun modelInfo(path: String): ModelInfo =
        withContext(Dispatchers.IO) { dev.hearth.modelInfo(path) }

    /** How much the engine logs (logcat tag `hearth` on Android, stderr on a desktop JVM). */
    fun setLogLevel(level: LogLevel) = dev.hearth.setLogLevel(level)
}
