package dev.hearth.chat

import com.sun.net.httpserver.HttpServer
import dev.hearth.CatalogueEntry
import dev.hearth.Fixtures
import dev.hearth.ModelRef
import dev.hearth.ModelStore
import dev.hearth.chat.logic.DownloadMachine
import dev.hearth.chat.logic.DownloadState
import dev.hearth.chat.logic.Fit
import dev.hearth.chat.logic.ImportResult
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.net.InetSocketAddress
import java.security.MessageDigest
import java.util.Collections
import java.util.concurrent.atomic.AtomicLong
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertTrue

/** The Models screen's download state machine against a local 127.0.0.1 server. */
class DownloadMachineTest {
    /**
     * Serves one file as the hub does (HEAD with X-Linked-Size; GET with Range → 206), with a
     * per-chunk delay that the test changes; records each GET's Range header.
     */
    private class Server(val bytes: ByteArray) {
        val delayMs = AtomicLong(0)
        val ranges: MutableList<String?> = Collections.synchronizedList(mutableListOf())
        val http: HttpServer = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0).apply {
            createContext("/") { ex ->
                ex.responseHeaders.add("X-Linked-Size", bytes.size.toString())
                if (ex.requestMethod == "HEAD") {
                    ex.sendResponseHeaders(200, -1)
                } else {
                    val range = ex.requestHeaders.getFirst("Range")
                    ranges.add(range)
                    val from = range?.removePrefix("bytes=")?.substringBefore('-')?.toInt() ?: 0
                    if (from > 0) {
                        ex.responseHeaders.add("Content-Range", "bytes $from-${bytes.size - 1}/${bytes.size}")
                        ex.sendResponseHeaders(206, (bytes.size - from).toLong())
                    } else {
                        ex.sendResponseHeaders(200, bytes.size.toLong())
                    }
                    try {
                        ex.responseBody.use { out ->
                            var at = from
                            while (at < bytes.size) {
                                val n = minOf(8 * 1024, bytes.size - at)
                                out.write(bytes, at, n)
                                out.flush()
                                at += n
                                Thread.sleep(delayMs.get())
                            }
                        }
                    } catch (_: java.io.IOException) {
                        // The client went away (pause / cancel).
                    }
                }
                ex.close()
            }
            start()
        }
        val endpoint get() = "http://127.0.0.1:${http.address.port}"
    }

    private fun entry(bytes: ByteArray, file: String): CatalogueEntry {
        val sha = MessageDigest.getInstance("SHA-256").digest(bytes).joinToString("") { "%02x".format(it) }
        return CatalogueEntry(
            "test-model", "Test model", "lfm2moe", 1_000_000uL, "a fixture", "Q4_0",
            bytes.size.toULong(), (3L * bytes.size).toULong(), true, ModelRef("test-owner/test-model", file, sha),
        )
    }

    @Test
    fun `download, pause, resume from the partial file, verify, delete`(@TempDir dir: File) = runBlocking {
        val bytes = File(Fixtures.path(Fixtures.MOE)).readBytes()
        val server = Server(bytes).apply { delayMs.set(150) }
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        val store = ModelStore(dir.path, server.endpoint)
        val e = entry(bytes, "tiny-Q4_0.gguf")
        val machine = DownloadMachine(store, dir, scope, deviceMemoryBytes = 8L shl 30) { listOf(e) }
        machine.refresh()
        val row = machine.rows.value.single()
        assertEquals(Fit.FITS, row.fit)
        assertEquals(DownloadState.NotDownloaded, row.state)

        machine.start(row.file)
        withTimeout(30_000) { machine.rows.map { it.single().state }.first { it is DownloadState.Downloading && it.downloadedBytes > 0 } }
        machine.pause(row.file)
        val paused = withTimeout(30_000) { machine.rows.map { it.single().state }.first { it is DownloadState.Paused } }
        assertIs<DownloadState.Paused>(paused)
        assertTrue(paused.downloadedBytes in 1L until bytes.size.toLong(), "$paused")
        assertEquals(emptyList(), store.installed())
        assertTrue(dir.walk().any { it.isFile && it.name.contains(".part") }, "the partial file is kept: ${dir.walk().toList()}")

        server.delayMs.set(0)
        machine.resume(row.file)
        val done = withTimeout(60_000) { machine.rows.map { it.single().state }.first { it is DownloadState.Installed || it is DownloadState.Failed } }
        assertIs<DownloadState.Installed>(done, "$done")
        assertTrue(done.verified)
        assertTrue(File(done.path).readBytes().contentEquals(bytes))
        // The second request resumed from the partial file, not from byte 0.
        val resumedFrom = server.ranges.last()?.removePrefix("bytes=")?.substringBefore('-')?.toLong()
        assertTrue(resumedFrom != null && resumedFrom > 0, "ranges asked: ${server.ranges}")
        assertEquals(listOf("tiny-Q4_0.gguf"), machine.installed.value.map { it.name })

        machine.delete(row.file)
        assertEquals(DownloadState.NotDownloaded, machine.rows.value.single().state)
        assertEquals(emptyList(), store.installed())
        server.http.stop(0)
        scope.cancel()
    }

    @Test
    fun `cancel stops the download and removes the partial file`(@TempDir dir: File) = runBlocking {
        val bytes = File(Fixtures.path(Fixtures.MOE)).readBytes()
        val server = Server(bytes).apply { delayMs.set(150) }
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        val e = entry(bytes, "tiny-Q4_0.gguf")
        val machine = DownloadMachine(ModelStore(dir.path, server.endpoint), dir, scope, deviceMemoryBytes = 8L shl 30) { listOf(e) }
        machine.refresh()
        machine.start(e.modelRef.file)
        withTimeout(30_000) { machine.rows.map { it.single().state }.first { it is DownloadState.Downloading && it.downloadedBytes > 0 } }
        machine.cancel(e.modelRef.file)
        withTimeout(30_000) { machine.rows.map { it.single().state }.first { it == DownloadState.NotDownloaded } }
        assertTrue(dir.walk().none { it.isFile && it.name.contains("tiny") }, "${dir.walk().toList()}")
        server.http.stop(0)
        scope.cancel()
    }

    @Test
    fun `import accepts a model the SDK validates and rejects anything else`(@TempDir dir: File) = runBlocking {
        val models = File(dir, "models").apply { mkdirs() }
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        val machine = DownloadMachine(ModelStore(models.path), models, scope, deviceMemoryBytes = 8L shl 30) { emptyList() }
        val corrupt = File(dir, "broken.gguf").apply { writeBytes(File(Fixtures.path(Fixtures.DENSE)).readBytes().copyOf(4096)) }
        assertIs<ImportResult.Rejected>(machine.importModel(corrupt))
        assertIs<ImportResult.Rejected>(machine.importModel(File(Fixtures.path(Fixtures.DENSE)), name = "notes.txt"))
        assertEquals(emptyList(), models.listFiles()!!.toList())
        val ok = machine.importModel(File(Fixtures.path(Fixtures.DENSE)))
        assertIs<ImportResult.Accepted>(ok)
        assertEquals("lfm2", ok.info.architecture)
        assertTrue(File(ok.path).readBytes().contentEquals(File(Fixtures.path(Fixtures.DENSE)).readBytes()))
        assertEquals(listOf(Fixtures.DENSE), machine.installed.value.map { it.name })
        scope.cancel()
    }
}
