package dev.hearth

import com.sun.net.httpserver.HttpServer
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.net.InetSocketAddress
import java.security.MessageDigest
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

class ErrorsAndStoreTest {
    @Test
    fun `each failure surfaces as its HearthException subclass`(@TempDir dir: File) = runBlocking {
        assertFailsWith<HearthException.Io> { HearthModel.load(File(dir, "missing.gguf").path) }
        val corrupt = File(dir, "corrupt.gguf")
        corrupt.writeBytes(File(Fixtures.path(Fixtures.DENSE)).readBytes().copyOf(4096))
        assertFailsWith<HearthException.InvalidModel> { HearthModel.load(corrupt.path, Fixtures.cpu) }
        assertFailsWith<HearthException.InsufficientMemory> {
            HearthModel.load(Fixtures.path(Fixtures.DENSE), ModelOptions(backend = Backend.CPU, memoryBudget = 100_000L))
        }
        assertFailsWith<HearthException.InvalidArgument> {
            HearthModel.load(Fixtures.path(Fixtures.DENSE), ModelOptions(contextLength = -1))
        }
        val model = HearthModel.load(Fixtures.path(Fixtures.DENSE), Fixtures.cpu)
        model.newSession(SessionOptions(contextLength = 64)).use { session ->
            val long = "word ".repeat(200)
            assertFailsWith<HearthException.ContextOverflow> { session.respond(long) }
            assertEquals(emptyList(), session.messages)
            // The session still works after the failed turn.
            assertTrue(session.respond("Hi", Fixtures.seeded(1L, maxTokens = 4)).stats.generatedTokens > 0u)
        }
        model.close()
    }

    @Test
    fun `cacheDir is accepted and forgetGpuFailures clears it or says why not`(@TempDir dir: File) = runBlocking {
        val model = HearthModel.load(Fixtures.path(Fixtures.DENSE), ModelOptions(backend = Backend.CPU, contextLength = 2048, cacheDir = dir.path))
        model.newSession(SessionOptions()).use { s -> assertTrue(s.respond("Hi", Fixtures.seeded(1L, maxTokens = 4)).stats.generatedTokens > 0u) }
        model.close()
        forgetGpuFailures(dir.path) // nothing recorded: fine
        val record = File(dir, "gpu-failures.json")
        record.writeText("{}")
        forgetGpuFailures(dir.path)
        assertTrue(!record.exists())
        record.mkdirs() // cannot be removed as a file
        assertFailsWith<HearthException.Io> { forgetGpuFailures(dir.path) }
        Unit
    }

    /** Serves one file as the hub does (HEAD with X-Linked-Size, GET body), optionally slowly. */
    private fun serve(bytes: ByteArray, delayMsPerChunk: Long): HttpServer {
        val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/") { ex ->
            ex.responseHeaders.add("X-Linked-Size", bytes.size.toString())
            if (ex.requestMethod == "HEAD") {
                ex.sendResponseHeaders(200, -1)
            } else {
                ex.sendResponseHeaders(200, bytes.size.toLong())
                try {
                    ex.responseBody.use { out ->
                        for (chunk in bytes.asList().chunked(16 * 1024)) {
                            out.write(chunk.toByteArray())
                            out.flush()
                            Thread.sleep(delayMsPerChunk)
                        }
                    }
                } catch (_: java.io.IOException) {
                    // The client went away (the cancel test).
                }
            }
            ex.close()
        }
        server.start()
        return server
    }

    @Test
    fun `a download from a local server reports progress, verifies, and can be cancelled`(@TempDir dir: File) = runBlocking {
        val bytes = File(Fixtures.path(Fixtures.MOE)).readBytes()
        val sha = MessageDigest.getInstance("SHA-256").digest(bytes).joinToString("") { "%02x".format(it) }
        val ref = ModelRef("test-owner/test-model", "tiny-Q4_0.gguf", sha)

        val slow = serve(bytes, delayMsPerChunk = 200)
        val store = ModelStore(dir.path, "http://127.0.0.1:${slow.address.port}")
        val first = store.download(ref).take(1).toList()
        assertEquals(1, first.size)
        assertEquals(emptyList(), store.installed())
        slow.stop(0)

        val fast = serve(bytes, delayMsPerChunk = 0)
        val store2 = ModelStore(dir.path, "http://127.0.0.1:${fast.address.port}")
        val progress = store2.download(ref).toList()
        fast.stop(0)
        assertTrue(progress.isNotEmpty())
        assertEquals(bytes.size.toULong(), progress.last().downloadedBytes)
        assertTrue(progress.zipWithNext().all { (a, b) -> a.downloadedBytes <= b.downloadedBytes || a.rehashing })
        val installed = store2.installed().single()
        assertEquals("tiny-Q4_0.gguf", installed.name)
        // Only the last item names the installed file.
        assertEquals(installed.path, progress.last().path)
        assertTrue(progress.dropLast(1).all { it.path == null }, "$progress")
        assertTrue(first.single().path == null)
        assertTrue(installed.verified)
        assertTrue(File(installed.path).readBytes().contentEquals(bytes))
        // An installed model loads.
        HearthModel.load(installed.path, Fixtures.cpu).close()
        store2.delete("tiny-Q4_0.gguf")
        assertEquals(emptyList(), store2.installed())
        // A wrong checksum is a download error.
        val bad = serve(bytes, 0)
        val store3 = ModelStore(dir.path, "http://127.0.0.1:${bad.address.port}")
        assertFailsWith<HearthException.Download> { store3.download(ref.copy(sha256 = "0".repeat(64))).toList() }
        bad.stop(0)
    }

    @Test
    fun `the catalogue lists entries with their fit`(@TempDir dir: File) {
        val entries = ModelStore(dir.path).catalogue()
        assertTrue(entries.isNotEmpty())
        assertTrue(entries.all { it.ramBytes > it.sizeBytes / 2u && it.modelRef.file.endsWith(".gguf") })
        assertTrue(entries.all { it.fits != null }, "Linux reports available memory")
    }

    @Test
    fun `load-close and session create-close cycles do not grow RSS`() = runBlocking {
        val path = Fixtures.path(Fixtures.DENSE)
        fun cycles(n: Int) {
            repeat(n) { HearthModel.open(path, Fixtures.cpu, null, null).close() }
        }
        val model = HearthModel.load(path, Fixtures.cpu)
        fun sessions(n: Int) = repeat(n) { model.newSession(SessionOptions(contextLength = 512)).close() }
        cycles(20)
        sessions(50)
        val before = Fixtures.rssKib()
        cycles(1000)
        sessions(1000)
        val grown = Fixtures.rssKib() - before
        model.close()
        assertTrue(grown < 32 * 1024, "RSS grew by $grown KiB over 1000 loads and 1000 sessions")
    }
}
