package dev.hearth.chat

import dev.hearth.Fixtures
import dev.hearth.HearthModel
import dev.hearth.Role
import dev.hearth.chat.logic.Author
import dev.hearth.chat.logic.ChatController
import dev.hearth.chat.logic.ChatMessage
import dev.hearth.chat.logic.ChatSettings
import dev.hearth.chat.logic.ConversationStore
import dev.hearth.chat.logic.DemoTools
import dev.hearth.chat.logic.SessionTurns
import dev.hearth.chat.logic.ToolCard
import dev.hearth.load
import dev.hearth.messages
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

class ConversationStoreTest {
    private val settings = ChatSettings(temperature = 0.9f, maxTokens = 24, toolsEnabled = false, thinkingBudget = 64)

    @Test
    fun `list, new, rename and delete, persisted as files`(@TempDir dir: File) {
        var now = 1_000L
        val store = ConversationStore(dir) { now++ }
        val a = store.create(settings)
        val b = store.create(settings.copy(temperature = 0.1f))
        assertEquals(listOf(b.id, a.id), store.conversations.value.map { it.id }, "newest first")
        val msgs = listOf(
            ChatMessage(1, Author.USER, "What is 2+2? And more text that is long enough to be cut in a title"),
            ChatMessage(2, Author.ASSISTANT, "", thinking = "t", thinkingTokens = 1, toolCards = listOf(ToolCard("c", "calculate", """{"expression":"2+2"}""", """{"result":4}"""))),
            ChatMessage(3, Author.ASSISTANT, "It is 4."),
        )
        val updated = store.update(a, msgs, modelName = "m.gguf")
        assertEquals("What is 2+2? And more text that is long…", updated.title)
        assertEquals(a.id, store.conversations.value.first().id, "updated goes first")
        // A fresh store reads the same conversation back.
        val reread = ConversationStore(dir).load(a.id)!!
        assertEquals(updated, reread)
        assertEquals(listOf(Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT), ConversationStore.history(reread.messages).map { it.role })
        assertEquals("Renamed", store.rename(a.id, "  Renamed ")!!.title)
        assertEquals("Renamed", ConversationStore(dir).load(a.id)!!.title)
        File(dir, "${a.id}.session").writeText("x")
        store.delete(a.id)
        assertNull(store.load(a.id))
        assertFalse(File(dir, "${a.id}.session").exists())
        assertEquals(listOf(b.id), store.conversations.value.map { it.id })
        assertEquals(0.1f, store.load(b.id)!!.settings.temperature)
    }

    @Test
    fun `a reopened conversation continues on its saved cache`(@TempDir dir: File) = runBlocking {
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        val model = HearthModel.load(Fixtures.path(Fixtures.DENSE), Fixtures.cpu)
        val tools = DemoTools()
        val store = ConversationStore(dir)
        var conv = store.create(settings)
        val session = model.newSession(settings.sessionOptions(tools.specs))
        val c = ChatController(SessionTurns(session), scope, { settings }, seeds = { 4L }, onTurnFinished = { m -> conv = store.update(conv, m) })
        c.send("Hello")
        c.awaitIdle()
        c.send("Tell me more")
        c.awaitIdle()
        assertEquals(4, store.load(conv.id)!!.messages.size)
        // The app goes to the background: the SDK session is saved with its cache, then released.
        store.saveCache(conv.id, session)
        val history = session.messages
        session.close()

        // Reopened (a fresh store, as after a restart): restored from the cache.
        val store2 = ConversationStore(dir)
        val loaded = store2.load(conv.id)!!
        val restored = store2.openSession(model, loaded, loaded.settings.sessionOptions(tools.specs))
        assertEquals(history, restored.messages)
        val c2 = ChatController(SessionTurns(restored), scope, { loaded.settings }, initial = loaded.messages, seeds = { 4L })
        c2.send("And then?")
        c2.awaitIdle()
        val stats = c2.state.value.messages.last().stats!!
        assertTrue(stats.cachedTokens > 0, "the saved cache is reused after reload: $stats")
        assertEquals(6, c2.state.value.messages.size)
        assertTrue(c2.state.value.messages.map { it.id }.toSet().size == 6, "ids stay unique after reload")
        restored.close()

        // Without the cache file the history is pushed into a new session and prefilled.
        store2.cacheFile(conv.id).delete()
        val rebuilt = store2.openSession(model, loaded, loaded.settings.sessionOptions(tools.specs))
        assertEquals(history.map { it.role to it.content }, rebuilt.messages.map { it.role to it.content })
        val c3 = ChatController(SessionTurns(rebuilt), scope, { loaded.settings }, initial = loaded.messages, seeds = { 4L })
        c3.send("And then?")
        c3.awaitIdle()
        assertEquals(0, c3.state.value.messages.last().stats!!.cachedTokens)
        rebuilt.close()
        scope.cancel()
        model.close()
    }
}
