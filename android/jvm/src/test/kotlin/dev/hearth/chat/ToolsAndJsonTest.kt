package dev.hearth.chat

import dev.hearth.ToolCall
import dev.hearth.chat.logic.Calculator
import dev.hearth.chat.logic.ChatSettings
import dev.hearth.chat.logic.DemoTools
import dev.hearth.chat.logic.Fit
import dev.hearth.chat.logic.Json
import dev.hearth.chat.logic.Markdown
import dev.hearth.chat.logic.SettingsModel
import dev.hearth.chat.logic.fitOf
import dev.hearth.Backend
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.time.ZoneId
import java.time.ZonedDateTime
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** The app logic's plain parts: the calculator, the demo tools, JSON, settings, fit. */
class ToolsAndJsonTest {
    @Test
    fun `the calculator evaluates precedence, power, unary minus and parentheses`() {
        val cases = mapOf(
            "1 + 2 * 3" to 7.0,
            "(1 + 2) * 3" to 9.0,
            "2 ^ 3 ^ 2" to 512.0,
            "-2 ^ 2" to -4.0,
            "2 ^ -1" to 0.5,
            "10 / 4" to 2.5,
            "7 % 3" to 1.0,
            "1.5e3 - 500" to 1000.0,
            "-(3 - 5) * 2" to 4.0,
            "12 × 3 ÷ 4" to 9.0,
        )
        for ((expr, want) in cases) assertEquals(want, Calculator.evaluate(expr), expr)
        for (bad in listOf("1 +", "2 * (3", "1 / 0", "abc", "", "3 4", "10 ^ 400", "(".repeat(100) + "1" + ")".repeat(100))) {
            assertFailsWith<Calculator.CalcException>(bad) { Calculator.evaluate(bad) }
        }
    }

    @Test
    fun `the demo tools answer JSON, and failures are results`() {
        val fixed = ZonedDateTime.of(2026, 12, 3, 10, 30, 0, 0, ZoneId.of("UTC"))
        val tools = DemoTools { fixed }
        val time = tools.execute(ToolCall("c1", DemoTools.TIME, """{"timezone":"Asia/Tokyo"}"""))
        assertNull(time.error)
        val t = Json.parseObject(time.resultJson)
        assertEquals("2026-12-03T19:30:00+09:00", t["iso8601"])
        assertEquals("Thursday", t["weekday"])
        val calc = tools.execute(ToolCall("c2", DemoTools.CALCULATOR, """{"expression":"2*(3+4)"}"""))
        assertEquals(14.0, Json.parseObject(calc.resultJson)["result"])
        assertTrue(tools.execute(ToolCall("c3", DemoTools.CALCULATOR, """{"expression":"1/0"}""")).error!!.contains("zero"))
        assertTrue(tools.execute(ToolCall("c4", "rm_rf", "{}")).error!!.contains("unknown tool"))
        assertTrue(tools.execute(ToolCall("c5", DemoTools.CALCULATOR, "{nope")).error != null)
        assertTrue(tools.execute(ToolCall("c6", DemoTools.TIME, """{"timezone":"Mars/Olympus"}""")).error != null)
        assertEquals(2, tools.specs.size)
        tools.specs.forEach { Json.parseObject(it.parametersJson) }
    }

    @Test
    fun `JSON round-trips nested values and escapes`() {
        val v = mapOf("a" to listOf(1, 2.5, true, null), "s" to "quote \" back \\ nl \n tab \t é \u0001", "o" to mapOf<String, Any?>())
        val back = Json.parse(Json.write(v))
        assertEquals(mapOf("a" to listOf(1.0, 2.5, true, null), "s" to v["s"], "o" to mapOf<String, Any?>()), back)
        for (bad in listOf("{", "[1,]", "{\"a\" 1}", "tru", "\"open", "1 2")) {
            assertFailsWith<Json.ParseException>(bad) { Json.parse(bad) }
        }
    }

    @Test
    fun `settings persist, clamp, and map to the SDK options`(@TempDir dir: File) {
        val file = File(dir, "settings.json")
        val model = SettingsModel(file)
        assertEquals(ChatSettings(), model.settings.value)
        model.setTemperature(5f)
        model.setThinkingBudget(256)
        model.setBackend(Backend.CPU)
        model.setInstructions("Answer in French.")
        val again = SettingsModel(file).settings.value
        assertEquals(2f, again.temperature)
        assertEquals(256, again.thinkingBudget)
        assertEquals(Backend.CPU, again.backend)
        val g = again.generateOptions(seed = 9L)
        assertEquals(2f, g.temperature)
        assertEquals(256, g.thinkingBudget)
        assertEquals(9L, g.seed)
        assertEquals("Answer in French.", again.sessionOptions(DemoTools().specs).instructions)
        assertEquals(Backend.CPU, again.modelOptions().backend)
        assertTrue(model.needsReload(ChatSettings()))
    }

    @Test
    fun `fit compares the SDK's RAM estimate with the device`() {
        val gib = 1L shl 30
        assertEquals(Fit.FITS, fitOf(1 * gib, 8 * gib, true))
        assertEquals(Fit.TIGHT, fitOf(1 * gib, 8 * gib, false))
        assertEquals(Fit.TIGHT, fitOf(4 * gib, 8 * gib, true))
        assertEquals(Fit.DOES_NOT_FIT, fitOf(6 * gib, 8 * gib, true))
        assertEquals(Fit.FITS, fitOf(1 * gib, 8 * gib, null))
    }
}

class MarkdownTest {
    @Test
    fun `blocks and inline styles of a chat answer`() {
        val md = "# Title\nSome **bold** and *it* and `x = 1`.\n\n- one\n2. two\n```kotlin\nval a = 1\n```\nopen **bold"
        val b = Markdown.parse(md)
        assertEquals(Markdown.Block.Heading(1, listOf(Markdown.Span("Title"))), b[0])
        assertEquals(
            Markdown.Block.Paragraph(listOf(Markdown.Span("Some "), Markdown.Span("bold", bold = true), Markdown.Span(" and "), Markdown.Span("it", italic = true), Markdown.Span(" and "), Markdown.Span("x = 1", code = true), Markdown.Span("."))),
            b[1],
        )
        assertEquals(Markdown.Block.Bullet(listOf(Markdown.Span("one"))), b[2])
        assertEquals(Markdown.Block.Bullet(listOf(Markdown.Span("two")), 2), b[3])
        assertEquals(Markdown.Block.Code("val a = 1", "kotlin"), b[4])
        assertEquals(Markdown.Block.Paragraph(listOf(Markdown.Span("open **bold"))), b[5], "an unclosed marker stays literal while streaming")
        assertEquals(6, b.size)
        // An unclosed code fence (mid-stream) is code up to the end.
        assertEquals(listOf(Markdown.Block.Code("partial", null)), Markdown.parse("```\npartial"))
    }
}
