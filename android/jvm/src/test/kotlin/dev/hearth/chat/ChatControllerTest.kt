package dev.hearth.chat

import dev.hearth.ChatEvent
import dev.hearth.Fixtures
import dev.hearth.GenerateOptions
import dev.hearth.HearthModel
import dev.hearth.Message
import dev.hearth.Role
import dev.hearth.StopReason
import dev.hearth.ToolCall
import dev.hearth.TurnStats
import dev.hearth.chat.logic.Author
import dev.hearth.chat.logic.ChatController
import dev.hearth.chat.logic.ChatSettings
import dev.hearth.chat.logic.DemoTools
import dev.hearth.chat.logic.Json
import dev.hearth.chat.logic.SessionTurns
import dev.hearth.chat.logic.ThermalLevel
import dev.hearth.chat.logic.TurnSource
import dev.hearth.load
import dev.hearth.messages
import dev.hearth.respond
import dev.hearth.toolResult
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.flowOf
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * The chat controller against real generations on a fixture model (random weights, real
 * tokenizer and chat template; CPU backend). Seeds are fixed so that runs can be compared.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ChatControllerTest {
    private lateinit var model: HearthModel
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

    // Sampling where different seeds give different text; tools off unless a test offers them.
    private val settings = ChatSettings(instructions = "Be brief.", temperature = 0.9f, maxTokens = 32, toolsEnabled = false)
    private val tools = DemoTools()
    private fun options(seed: Long) = settings.generateOptions(seed)

    @BeforeAll
    fun load() = runBlocking { model = HearthModel.load(Fixtures.path(Fixtures.DENSE), Fixtures.cpu) }

    @AfterAll
    fun close() {
        scope.cancel()
        model.close()
    }

    private fun controller(turns: TurnSource, seed: Long, s: ChatSettings = settings) =
        ChatController(turns, scope, { s }, backend = model.info().backend, tools = tools, seeds = { seed })

    /**
     * The session's turns with a rendezvous buffer: the engine thread hands each token to the
     * collector and waits, so a stop after the first event lands while the turn is still running
     * (the SDK's own buffer would let a 32-token turn of this tiny model finish first).
     */
    private class Lockstep(val real: SessionTurns, val onEvent: () -> Unit = {}) : TurnSource by real {
        override fun send(message: Message, options: GenerateOptions): Flow<ChatEvent> =
            real.send(message, options).buffer(0).onEach { onEvent() }
    }

    @Test
    fun `stop rolls the turn back, returns the draft, and resending equals a never-stopped session`() = runBlocking {
        val session = model.newSession(settings.sessionOptions(tools.specs))
        lateinit var c: ChatController
        var stopAtFirst = true
        c = controller(Lockstep(SessionTurns(session)) { if (stopAtFirst) { stopAtFirst = false; c.stop() } }, seed = 11L)
        c.setDraft("Tell me a story")
        assertTrue(c.send())
        assertEquals("", c.state.value.draft)
        c.awaitIdle()
        val stopped = c.state.value
        assertEquals(emptyList(), stopped.messages)
        assertEquals("Tell me a story", stopped.draft)
        assertFalse(stopped.generating)
        assertFalse(stopped.canResume, "a user's stop is not an interruption")
        assertEquals(emptyList(), session.messages, "the SDK rolled the turn back")

        assertTrue(c.send())
        c.awaitIdle()
        val reference = model.newSession(settings.sessionOptions(tools.specs)).use { it.respond("Tell me a story", options(11L)) }
        val answer = c.state.value.messages.last()
        assertEquals(Author.ASSISTANT, answer.author)
        assertEquals(reference.text, answer.text)
        assertEquals(reference.thinking.orEmpty(), answer.thinking)
        assertEquals(reference.stats.generatedTokens.toInt(), answer.stats!!.generatedTokens)
        assertFalse(answer.streaming)
        assertEquals(listOf(Author.USER, Author.ASSISTANT), c.state.value.messages.map { it.author })
        assertEquals(2, session.messages.size)
        session.close()
    }

    @Test
    fun `an interruption (background, heat) shows a notice and resume sends the turn again`() = runBlocking {
        val session = model.newSession(settings.sessionOptions(tools.specs))
        lateinit var c: ChatController
        var first = true
        c = controller(Lockstep(SessionTurns(session)) { if (first) { first = false; c.setThermal(ThermalLevel.CRITICAL) } }, seed = 3L)
        c.send("Hello there")
        c.awaitIdle()
        val paused = c.state.value
        assertTrue(paused.canResume)
        assertNotNull(paused.notice)
        assertEquals(emptyList(), paused.messages)
        assertEquals(emptyList(), session.messages)
        c.setThermal(ThermalLevel.NOMINAL)
        assertTrue(c.resume())
        c.awaitIdle()
        val done = c.state.value
        assertEquals("Hello there", done.messages.first().text)
        assertNotNull(done.messages.last().stats)
        assertEquals(2, session.messages.size)
        session.close()
    }

    @Test
    fun `regenerate replaces the answer and reuses the cached prompt`() = runBlocking {
        val session = model.newSession(settings.sessionOptions(tools.specs))
        var seed = 1L
        val c = ChatController(SessionTurns(session), scope, { settings }, tools = tools, seeds = { seed })
        c.send("Hello")
        c.awaitIdle()
        val first = c.state.value.messages.last()
        assertTrue(c.state.value.canRegenerate)
        seed = 2L
        assertTrue(c.regenerate())
        c.awaitIdle()
        val msgs = c.state.value.messages
        assertEquals(listOf(Author.USER, Author.ASSISTANT), msgs.map { it.author })
        val again = msgs.last()
        assertTrue(again.id != first.id)
        assertEquals(session.messages[1].content, again.text)
        assertEquals(2, session.messages.size)
        val stats = again.stats!!
        assertTrue(stats.cachedTokens > 0, "regenerate reuses the prompt's cache: $stats")
        session.close()
    }

    @Test
    fun `editing the last message answers the new text on the cached history`() = runBlocking {
        val session = model.newSession(settings.sessionOptions(tools.specs))
        val c = controller(SessionTurns(session), seed = 5L)
        c.send("Hello")
        c.awaitIdle()
        c.send("And its size?")
        c.awaitIdle()
        assertTrue(c.editLast("What about its weight?"))
        c.awaitIdle()
        val msgs = c.state.value.messages
        assertEquals(listOf("Hello", "What about its weight?"), msgs.filter { it.author == Author.USER }.map { it.text })
        assertEquals(4, msgs.size)
        assertEquals(listOf(Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT), session.messages.map { it.role })
        assertEquals("What about its weight?", session.messages[2].content)
        assertTrue(msgs.last().stats!!.cachedTokens > 0, "the history before the edited message is reused")
        // The same as asking the edited question in the first place.
        val reference = model.newSession(settings.sessionOptions(tools.specs)).use { r ->
            r.respond("Hello", options(5L))
            r.respond("What about its weight?", options(5L))
        }
        assertEquals(reference.text, msgs.last().text)
        session.close()
    }

    /**
     * Random-weight fixtures never emit a well-formed tool call on their own, so the model's first
     * turn is scripted: [ScriptedCall] pushes the user message and an assistant tool call into the
     * real session's history (as a real call would leave it) and emits the events such a turn
     * streams. Everything after it is real: the controller runs the calculator, sends the result
     * to the real session, and the model's continuation is generated.
     */
    private class ScriptedCall(val real: SessionTurns, val call: ToolCall) : TurnSource by real {
        var scripted = false

        override fun send(message: Message, options: GenerateOptions): Flow<ChatEvent> {
            if (scripted || message.role != Role.USER) return real.send(message, options)
            scripted = true
            real.append(listOf(message, Message(Role.ASSISTANT, "", toolCalls = listOf(call))))
            val stats = TurnStats(StopReason.END_OF_TURN, 0u, 0u, 1u, 0.0, 0.0, 0.0)
            return flowOf(ChatEvent.ToolCall(call), ChatEvent.Done(stats))
        }
    }

    @Test
    fun `a tool call round trip - the calculator runs locally and the answer continues`() = runBlocking {
        val withTools = settings.copy(toolsEnabled = true)
        val session = model.newSession(withTools.sessionOptions(tools.specs))
        val call = ToolCall("call_7", DemoTools.CALCULATOR, """{"expression":"2*(3+4)"}""")
        var finished: List<Author>? = null
        val ui = ChatController(
            ScriptedCall(SessionTurns(session), call), scope, { withTools }, tools = tools, seeds = { 9L },
            onTurnFinished = { m -> finished = m.map { it.author } },
        )
        ui.send("What is 2*(3+4)?")
        withTimeout(60_000) { ui.state.first { !it.generating && it.messages.size == 3 } }
        ui.awaitIdle()
        val msgs = ui.state.value.messages
        assertEquals(listOf(Author.USER, Author.ASSISTANT, Author.ASSISTANT), msgs.map { it.author })
        val card = msgs[1].toolCards.single()
        assertEquals("call_7", card.callId)
        assertNull(card.error)
        assertEquals(14.0, Json.parseObject(card.resultJson!!)["result"])
        val answer = msgs[2]
        val stats = answer.stats!!
        assertTrue(stats.generatedTokens > 0)
        // The scripted history was appended, never prefilled: this turn prefills all of it.
        assertEquals(0, stats.cachedTokens, "$stats")
        assertTrue(stats.promptTokens > 0)
        assertEquals(listOf(Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT), session.messages.map { it.role })
        assertEquals("call_7", session.messages[2].toolCallId)
        assertEquals(card.resultJson, session.messages[2].content)
        assertEquals(answer.text, session.messages[3].content)
        assertEquals(msgs.map { it.author }, finished)
        // The continuation is the model's real answer to that history.
        val reference = model.newSession(withTools.sessionOptions(tools.specs)).use { r ->
            r.appendMessages(listOf(Message(Role.USER, "What is 2*(3+4)?"), Message(Role.ASSISTANT, "", toolCalls = listOf(call))))
            r.respond(Message.toolResult(DemoTools.CALCULATOR, card.resultJson, callId = "call_7"), withTools.generateOptions(9L))
        }
        assertEquals(reference.text, answer.text)
        session.close()
    }
}
