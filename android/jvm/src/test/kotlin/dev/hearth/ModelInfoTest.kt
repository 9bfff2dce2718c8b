package dev.hearth

import java.io.File
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/** The first calls through the FFI: real fixture files, read by the Rust engine. */
class ModelInfoTest {
    private val fixtures = File(System.getProperty("hearth.fixtures.dir"), "gguf")

    private fun fixture(name: String): String {
        val f = File(fixtures, name)
        assertTrue(f.isFile, "fixture missing: $f")
        return f.path
    }

    @Test
    fun `dense fixture reports its header`() {
        val info = modelInfo(fixture("lfm2-dense-h64-q4_0.gguf"))
        assertEquals(ModelInfo("lfm2", 6u, 2048u, 128000u, 355104uL, info.parameters, "Q4_0"), info)
        assertTrue(info.parameters > 0uL)
    }

    @Test
    fun `moe fixture reports its architecture`() {
        val info = modelInfo(fixture("lfm2moe-h64-e8k2-q4_0.gguf"))
        assertEquals("lfm2moe", info.architecture)
        assertEquals(6u, info.nLayer)
        assertEquals(2048u, info.vocab)
        assertEquals(File(fixtures, "lfm2moe-h64-e8k2-q4_0.gguf").length().toULong(), info.fileSizeBytes)
    }

    @Test
    fun `missing file throws Io`() {
        val e = assertFailsWith<HearthException.Io> { modelInfo(File(fixtures, "no-such-model.gguf").path) }
        assertTrue("no-such-model.gguf" in e.message.orEmpty(), e.message)
    }

    @Test
    fun `a file that is not GGUF throws InvalidModel`(@TempDir dir: File) {
        val f = File(dir, "not-a-model.gguf").apply { writeText("this is not a GGUF file, just text") }
        val e: HearthException = assertFailsWith<HearthException.InvalidModel> { modelInfo(f.path) }
        assertTrue("GGUF" in e.message.orEmpty(), e.message)
    }

    @Test
    fun `suspend wrapper returns the same info off the caller's thread`() = runBlocking {
        val path = fixture("lfm2-dense-h64-q4_0.gguf")
        assertEquals(modelInfo(path), Hearth.modelInfo(path))
        assertFailsWith<HearthException.Io> { Hearth.modelInfo(File(fixtures, "missing.gguf").path) }
        Unit
    }

    @Test
    fun `sdk version is the crate version`() {
        Hearth.setLogLevel(LogLevel.WARN)
        assertTrue(Regex("""\d+\.\d+\.\d+.*""").matches(Hearth.version), Hearth.version)
    }
}
