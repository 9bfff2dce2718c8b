package dev.hearth.chat.logic

import dev.hearth.CatalogueEntry
import dev.hearth.Hearth
import dev.hearth.HearthException
import dev.hearth.InstalledModel
import dev.hearth.ModelInfo
import dev.hearth.ModelStore
import dev.hearth.download
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.io.File

/** Whether a model's memory need fits this device. */
enum class Fit(val label: String) {
    FITS("Fits"),
    TIGHT("Tight"),
    DOES_NOT_FIT("Does not fit"),
}

/**
 * The fit of a model needing [ramBytes] (the SDK's estimate, `CatalogueEntry.ramBytes`) on a
 * device with [deviceMemoryBytes] of RAM. [fitsNow] is the SDK's own check against the memory
 * available right now (`CatalogueEntry.fits`). An app gets a share of RAM, not all of it:
 * beyond 60 % of it the OS kills apps under pressure, and available memory varies.
 */
fun fitOf(ramBytes: Long, deviceMemoryBytes: Long, fitsNow: Boolean?): Fit = when {
    ramBytes > deviceMemoryBytes * 6 / 10 -> Fit.DOES_NOT_FIT
    fitsNow == false || ramBytes > deviceMemoryBytes * 4 / 10 -> Fit.TIGHT
    else -> Fit.FITS
}

sealed interface DownloadState {
    data object NotDownloaded : DownloadState
    data class Downloading(val downloadedBytes: Long, val totalBytes: Long?, val bytesPerSecond: Double) : DownloadState {
        val fraction: Float? get() = totalBytes?.takeIf { it > 0 }?.let { downloadedBytes.toFloat() / it }
    }

    /** An existing partial file is being re-hashed before the download resumes. */
    data class Verifying(val checkedBytes: Long) : DownloadState

    /** Stopped with the partial file kept; resuming continues from [downloadedBytes]. */
    data class Paused(val downloadedBytes: Long, val totalBytes: Long?) : DownloadState
    data class Installed(val path: String, val verified: Boolean) : DownloadState
    data class Failed(val message: String) : DownloadState
}

/** A catalogue row of the Models screen. */
data class ModelRow(val entry: CatalogueEntry, val fit: Fit, val featured: Boolean, val state: DownloadState) {
    val file: String get() = entry.modelRef.file
}

/** The outcome of importing a GGUF picked by the user. */
sealed interface ImportResult {
    data class Accepted(val path: String, val info: ModelInfo) : ImportResult
    data class Rejected(val reason: String) : ImportResult
}

/** Starts and stops download work: in-process coroutines, or WorkManager on Android. */
interface DownloadLauncher {
    fun start(file: String)
    fun stop(file: String)
}

/**
 * The Models screen's logic: the catalogue with each entry's fit, and per file a download state
 * machine NotDownloaded → Downloading ⇄ Paused → (Verifying) → Installed, or Failed / cancelled.
 * Pause cancels the SDK download, which keeps the partial file; resume starts the SDK's download
 * again, which re-hashes the partial file and continues it; cancel also deletes the partial file.
 * [runDownload] does one download and is what a launcher's work calls (the Android worker included).
 */
class DownloadMachine(
    private val store: ModelStore,
    private val modelsDir: File,
    private val scope: CoroutineScope,
    private val deviceMemoryBytes: Long,
    launcher: DownloadLauncher? = null,
    /** The entries offered (default: the SDK's built-in catalogue). */
    private val catalogue: () -> List<CatalogueEntry> = store::catalogue,
) {
    private val launcher: DownloadLauncher = launcher ?: InProcess()
    private val _rows = MutableStateFlow<List<ModelRow>>(emptyList())
    val rows: StateFlow<List<ModelRow>> = _rows.asStateFlow()
    private val _installed = MutableStateFlow<List<InstalledModel>>(emptyList())
    val installed: StateFlow<List<InstalledModel>> = _installed.asStateFlow()

    private enum class Intent { PAUSE, CANCEL }
    private val intents = java.util.concurrent.ConcurrentHashMap<String, Intent>()

    /** Reloads the catalogue and what is installed; keeps the state of running downloads. */
    fun refresh() {
        val installed = store.installed()
        _installed.value = installed
        val running = _rows.value.associate { it.file to it.state }
        _rows.value = catalogue().map { e ->
            val file = e.modelRef.file
            val state = installed.firstOrNull { it.name == file }?.let { DownloadState.Installed(it.path, it.verified) }
                ?: running[file]?.takeIf { it !is DownloadState.Installed }
                ?: DownloadState.NotDownloaded
            ModelRow(e, fitOf(e.ramBytes.toLong(), deviceMemoryBytes, e.fits), e.id in FEATURED, state)
        }.sortedWith(compareByDescending<ModelRow> { it.featured }.thenBy { it.entry.sizeBytes })
    }

    fun state(file: String): DownloadState = _rows.value.firstOrNull { it.file == file }?.state ?: DownloadState.NotDownloaded

    fun start(file: String) {
        val s = state(file)
        if (s is DownloadState.Downloading || s is DownloadState.Verifying || s is DownloadState.Installed) return
        intents.remove(file)
        set(file, DownloadState.Downloading((s as? DownloadState.Paused)?.downloadedBytes ?: 0L, null, 0.0))
        launcher.start(file)
    }

    fun pause(file: String) {
        if (state(file) !is DownloadState.Downloading && state(file) !is DownloadState.Verifying) return
        intents[file] = Intent.PAUSE
        launcher.stop(file)
    }

    fun resume(file: String) = start(file)

    /** Stops the download and deletes its partial file. */
    fun cancel(file: String) {
        val s = state(file)
        if (s is DownloadState.Installed) return
        intents[file] = Intent.CANCEL
        launcher.stop(file)
        if (s !is DownloadState.Downloading && s !is DownloadState.Verifying) {
            store.delete(file)
            set(file, DownloadState.NotDownloaded)
        }
    }

    fun delete(file: String) {
        store.delete(file)
        set(file, DownloadState.NotDownloaded)
        refresh()
    }

    /** Downloads [file] (a catalogue entry) until it is verified, stopped or failed. */
    suspend fun runDownload(file: String) {
        val entry = _rows.value.firstOrNull { it.file == file }?.entry ?: return
        var last = DownloadState.Downloading(0, null, 0.0)
        try {
            store.download(entry.modelRef).collect { p ->
                if (p.rehashing) {
                    set(file, DownloadState.Verifying(p.downloadedBytes.toLong()))
                } else {
                    last = DownloadState.Downloading(p.downloadedBytes.toLong(), p.totalBytes?.toLong(), p.bytesPerSecond)
                    set(file, last)
                }
            }
            val done = store.installed().firstOrNull { it.name == file }
            set(file, done?.let { DownloadState.Installed(it.path, it.verified) } ?: DownloadState.Failed("the file is missing after its download"))
            _installed.value = store.installed()
        } catch (e: CancellationException) {
            when (intents.remove(file)) {
                Intent.CANCEL -> {
                    store.delete(file)
                    set(file, DownloadState.NotDownloaded)
                }
                // Paused, or stopped by the system (the app killed): the partial file is kept.
                else -> set(file, DownloadState.Paused(last.downloadedBytes, last.totalBytes))
            }
            throw e
        } catch (e: HearthException) {
            set(file, DownloadState.Failed(describe(e)))
        }
    }

    /**
     * Validates the GGUF at [source] with the SDK (header, architecture, tensors) and, if it is
     * a model Hearth runs, copies it into the models directory. A rejected file is not copied.
     */
    suspend fun importModel(source: File, name: String = source.name): ImportResult = withContext(Dispatchers.IO) {
        if (!name.endsWith(".gguf", ignoreCase = true)) return@withContext ImportResult.Rejected("Only .gguf model files can be imported.")
        val info = try {
            Hearth.modelInfo(source.path)
        } catch (e: HearthException) {
            return@withContext ImportResult.Rejected(describe(e))
        }
        val target = File(modelsDir, File(name).name)
        if (source.canonicalPath != target.canonicalPath) {
            val tmp = File(modelsDir, "${target.name}.import")
            source.copyTo(tmp, overwrite = true)
            if (!tmp.renameTo(target)) {
                tmp.delete()
                return@withContext ImportResult.Rejected("The file could not be stored (check free space).")
            }
        }
        withContext(Dispatchers.Default) { refresh() }
        ImportResult.Accepted(target.path, info)
    }

    private fun set(file: String, state: DownloadState) = _rows.update { rows ->
        rows.map { if (it.file == file) it.copy(state = state) else it }
    }

    private inner class InProcess : DownloadLauncher {
        private val jobs = java.util.concurrent.ConcurrentHashMap<String, Job>()
        override fun start(file: String) {
            jobs[file] = scope.launch { runDownload(file) }
        }

        override fun stop(file: String) {
            jobs.remove(file)?.cancel()
        }
    }

    companion object {
        /** Catalogue ids shown first (LFM2.5-1.2B-Instruct, LFM2.5-8B-A1B). */
        val FEATURED = setOf("lfm2.5-1.2b-instruct", "lfm2.5-8b-a1b")
    }
}
