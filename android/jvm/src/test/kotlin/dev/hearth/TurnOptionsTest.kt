package dev.hearth

import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

/** Edit turns, a generated tool call round trip, and the sampling options, on a fixture model. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TurnOptionsTest {
    private lateinit var model: HearthModel

    @BeforeAll
    fun load() = runBlocking { model = HearthModel.load(Fixtures.path(Fixtures.DENSE), Fixtures.cpu) }

    @AfterAll
    fun close() = model.close()

    @Test
    fun `edit replaces the last user message and answers as if it had been sent`() = runBlocking {
        val opts = Fixtures.seeded(6L)
        model.newSession(SessionOptions()).use { session ->
            assertFailsWith<HearthException.InvalidArgument> { session.edit("Nothing to edit yet", opts) }
            session.respond("Hello", opts)
            session.respond("Tell me about worms", opts)
            val edited = session.edit("Tell me about cats", opts)
            assertEquals(listOf("Hello", "Tell me about cats"), session.messages.filter { it.role == Role.USER }.map { it.content })
            assertEquals(4, session.messages.size)
            model.newSession(SessionOptions()).use { direct ->
                direct.respond("Hello", opts)
                val reference = direct.respond("Tell me about cats", opts)
                assertEquals(reference.text, edited.text)
                assertEquals(reference.thinking, edited.thinking)
                // The cache up to the edited message (at least the first exchange) was reused.
                assertTrue(reference.stats.cachedTokens > 0u)
                assertTrue(edited.stats.cachedTokens >= reference.stats.cachedTokens, "${edited.stats} vs ${reference.stats}")
                assertEquals(direct.messages, session.messages)
            }
        }
    }

    @Test
    fun `a generated tool call is parsed and its result fed back`() = runBlocking {
        val tool = ToolSpec(
            "get_weather", "Current weather for a city",
            """{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""",
        )
        // The fixture's weights are random: steer it through the call's tokens with decreasing
        // biases, and a presence penalty that removes each token once it was generated.
        val ids = model.tokenize("<|tool_call_start|>[get_weather(city=\"Paris\")]<|tool_call_end|>")
        assertEquals(ids.size, ids.toSet().size, "the steering needs distinct tokens: $ids")
        assertEquals(ids.first(), model.tokenize("<|tool_call_start|>").single(), "a control token is one id")
        assertTrue(model.tokenize("<|tool_call_start|>", special = false).size > 1, "plain text splits it")
        val steer = GenerateOptions(
            temperature = 0f,
            maxTokens = ids.size,
            presencePenalty = 10_000f,
            penaltyWindow = ids.size,
            logitBias = ids.mapIndexed { i, t -> LogitBias(t, 1000f - 50f * i) },
        )
        model.newSession(SessionOptions(tools = listOf(tool))).use { session ->
            val events = session.streamResponse("What is the weather like?", steer).toList()
            val calls = events.filterIsInstance<ChatEvent.ToolCall>().map { it.call }
            assertEquals(1, calls.size, "$events")
            assertEquals("get_weather", calls[0].name)
            assertEquals("""{"city":"Paris"}""", calls[0].argumentsJson)
            assertIs<ChatEvent.Done>(events.last())
            assertEquals(calls, session.messages[1].toolCalls)

            val reply = session.respond(Message.toolResult("get_weather", """{"temp_c":21}""", callId = calls[0].id), Fixtures.seeded(3L))
            assertTrue(reply.stats.generatedTokens > 0u)
            assertTrue(reply.stats.cachedTokens > 0u, "${reply.stats}")
            assertEquals(listOf(Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT), session.messages.map { it.role })
            assertEquals(calls[0].id, session.messages[2].toolCallId)
        }
        // Without the steering the same turn is no tool call: the biases did it.
        model.newSession(SessionOptions(tools = listOf(tool))).use { session ->
            val plain = session.streamResponse("What is the weather like?", steer.copy(logitBias = emptyList())).toList()
            assertTrue(plain.none { it is ChatEvent.ToolCall }, "$plain")
        }
    }

    @Test
    fun `the thinking budget ends the thinking`() = runBlocking {
        // A strong bias opens a thinking block; the presence penalty keeps it from repeating
        // `<think>`, so the random model goes on thinking in words.
        val think = model.tokenize("<think>").single()
        fun opts(budget: Int?) = GenerateOptions(
            temperature = 0f, maxTokens = 24, presencePenalty = 40f,
            logitBias = listOf(LogitBias(think, 40f)), thinkingBudget = budget,
        )
        fun firstBlock(events: List<ChatEvent>) = events.takeWhile { it is ChatEvent.Thinking }.size
        val unlimited = model.newSession(SessionOptions()).use { it.streamResponse("Think first", opts(null)).toList() }
        assertTrue(firstBlock(unlimited) > 3, "$unlimited")
        model.newSession(SessionOptions()).use { session ->
            val budgeted = session.streamResponse("Think first", opts(3)).toList()
            assertTrue(firstBlock(budgeted) in 1..3, "$budgeted")
            assertTrue(session.messages.last().thinking.orEmpty().isNotEmpty())
            assertFailsWith<HearthException.InvalidArgument> { session.respond("Hi", opts(-1)) }
        }
        Unit
    }

    @Test
    fun `top-k 1 and min-p 1 sample the most likely token`() = runBlocking {
        val prompt = "Tell me a story"
        val greedy = referenceReply(model, SessionOptions(), prompt, GenerateOptions(temperature = 0f, maxTokens = 24))
        val hot = GenerateOptions(temperature = 1.5f, maxTokens = 24, seed = 9L)
        assertNotEquals(greedy, referenceReply(model, SessionOptions(), prompt, hot))
        for (narrow in listOf(hot.copy(topK = 1), hot.copy(minP = 1f))) {
            val events = model.newSession(SessionOptions()).use { it.streamResponse(prompt, narrow).toList() }
            assertEquals(greedy, Fixtures.text(events), "$narrow")
        }
        model.newSession(SessionOptions()).use { session ->
            assertFailsWith<HearthException.InvalidArgument> { session.respond(prompt, hot.copy(topP = 0f)) }
            assertFailsWith<HearthException.InvalidArgument> { session.respond(prompt, hot.copy(repetitionPenalty = 0f)) }
            assertFailsWith<HearthException.InvalidArgument> { session.respond(prompt, hot.copy(topK = -1)) }
            assertEquals(emptyList(), session.messages)
        }
    }

    @Test
    fun `penalties and stop strings change the answer`() = runBlocking {
        val prompt = "Tell me a story"
        val base = GenerateOptions(temperature = 0f, maxTokens = 24, repetitionPenalty = 1f)
        val plain = referenceReply(model, SessionOptions(), prompt, base)
        val penalized = model.newSession(SessionOptions()).use { s ->
            Fixtures.text(s.streamResponse(prompt, base.copy(frequencyPenalty = 5f, presencePenalty = 5f)).toList())
        }
        assertNotEquals(plain, penalized)
        assertEquals(referenceReply(model, SessionOptions(), prompt, base.copy(frequencyPenalty = 5f, presencePenalty = 5f)), penalized)
        // A stop string cut from the greedy answer ends the turn just before it.
        val answer = model.newSession(SessionOptions()).use { it.respond(prompt, base) }
        val cut = answer.text.substring(answer.text.length / 2).trim().take(3)
        assertTrue(cut.isNotEmpty(), "the greedy answer has text: $answer")
        val stopped = model.newSession(SessionOptions()).use { it.respond(prompt, base.copy(stop = listOf(cut))) }
        assertEquals(StopReason.STOP_STRING, stopped.stats.stopReason, "${stopped.text} / $cut")
        assertEquals(answer.text.substringBefore(cut), stopped.text)
    }
}
