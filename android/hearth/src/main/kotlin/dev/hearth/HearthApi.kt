package dev.hearth

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.Job
import kotlinx.coroutines.channels.SendChannel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.flowOn
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicReference

// The coroutine layer over the generated objects (hearth_ffi.kt): the records, enums,
// HearthException and the objects are the generated ones; this file adds suspend functions and
// Flows. No Android API here: the JVM tests (android/jvm) compile this very file.

/**
 * Loads the GGUF model at [path] on [Dispatchers.IO]. [progress] is called on the loading
 * thread. Cancelling the calling coroutine stops the load between its steps.
 *
 * @throws HearthException.Io, [HearthException.InvalidModel], [HearthException.UnsupportedModel],
 *   [HearthException.InsufficientMemory] (the model does not fit `options.memoryBudget` or the
 *   memory available), [HearthException.GpuFault] (with `Backend.GPU`).
 */
suspend fun HearthModel.Companion.load(
    path: String,
    options: ModelOptions = ModelOptions(),
    progress: ((LoadProgress) -> Unit)? = null,
): HearthModel = coroutineScope {
    val cancel = CancelHandle()
    val listener = progress?.let { f ->
        object : LoadListener {
            override fun onProgress(progress: LoadProgress) = f(progress)
        }
    }
    val loading = async(Dispatchers.IO) { HearthModel.open(path, options, listener, cancel) }
    try {
        loading.await()
    } catch (e: CancellationException) {
        cancel.cancel()
        throw e
    } catch (e: HearthException.Cancelled) {
        throw CancellationException(e.message)
    }
}

/** What the model is and where it runs (backend in use and why). */
val HearthModel.info: ModelInfo
    get() = info()

/** A user message. */
fun Message.Companion.user(text: String): Message = Message(Role.USER, text)

/** The result of the tool call [callId] (`ChatEvent.ToolCall.call.id`) of tool [name]. */
fun Message.Companion.toolResult(name: String, resultJson: String, callId: String? = null): Message =
    Message(Role.TOOL, resultJson, toolCallId = callId, name = name)

/** The answer of one turn, collected. */
data class Response(
    val text: String,
    val thinking: String?,
    val toolCalls: List<ToolCall>,
    val stats: TurnStats,
)

/**
 * Streams the answer to [text]. Collecting starts the turn on an engine-owned thread;
 * cancelling the collector (or `take(n)`, or an exception downstream) cancels it within one
 * token and rolls the session back exactly. Ends with [ChatEvent.Done].
 */
fun ChatSession.streamResponse(text: String, options: GenerateOptions = GenerateOptions()): Flow<ChatEvent> =
    streamResponse(Message.user(text), options)

/** Streams the answer to [message] (a user message or [Message.Companion.toolResult]). */
fun ChatSession.streamResponse(message: Message, options: GenerateOptions = GenerateOptions()): Flow<ChatEvent> =
    turn(ChatInput.Send(message), options)

/** Streams a new answer to the last message, replacing the last answer. */
fun ChatSession.streamRegenerate(options: GenerateOptions = GenerateOptions()): Flow<ChatEvent> =
    turn(ChatInput.Regenerate, options)

/**
 * Streams the answer to [text] put in place of the last user message: what followed that
 * message is dropped and the cache up to it is reused.
 */
fun ChatSession.streamEdit(text: String, options: GenerateOptions = GenerateOptions()): Flow<ChatEvent> =
    turn(ChatInput.Edit(text), options)

suspend fun ChatSession.respond(text: String, options: GenerateOptions = GenerateOptions()): Response =
    streamResponse(text, options).collectResponse()

suspend fun ChatSession.respond(message: Message, options: GenerateOptions = GenerateOptions()): Response =
    streamResponse(message, options).collectResponse()

suspend fun ChatSession.regenerate(options: GenerateOptions = GenerateOptions()): Response =
    streamRegenerate(options).collectResponse()

suspend fun ChatSession.edit(text: String, options: GenerateOptions = GenerateOptions()): Response =
    streamEdit(text, options).collectResponse()

/** The conversation so far. */
val ChatSession.messages: List<Message>
    get() = messages()

private fun ChatSession.turn(input: ChatInput, options: GenerateOptions): Flow<ChatEvent> = callbackFlow {
    val sender = BlockingSender(channel)
    val listener = object : GenerationListener {
        // Runs on the generation thread; blocking here is the backpressure of a slow collector.
        override fun onEvents(events: List<ChatEvent>): Boolean = events.all { sender.send(it) }

        override fun onFinish(stats: TurnStats?, error: HearthException?) {
            when {
                error is HearthException.Cancelled || stats?.stopReason == StopReason.CANCELLED ->
                    close(CancellationException("the turn was cancelled"))
                error != null -> close(error)
                stats == null -> close(HearthException.Internal("the turn ended without its figures"))
                else -> {
                    sender.send(ChatEvent.Done(stats))
                    close()
                }
            }
        }
    }
    val handle = generate(input, options, listener)
    awaitClose {
        handle.cancel()
        sender.close()
        handle.close()
    }
}.flowOn(Dispatchers.IO)

private suspend fun Flow<ChatEvent>.collectResponse(): Response {
    val text = StringBuilder()
    var thinking: StringBuilder? = null
    val calls = mutableListOf<ToolCall>()
    var stats: TurnStats? = null
    collect { e ->
        when (e) {
            is ChatEvent.Text -> text.append(e.text)
            is ChatEvent.Thinking -> (thinking ?: StringBuilder().also { thinking = it }).append(e.text)
            is ChatEvent.ToolCall -> calls.add(e.call)
            is ChatEvent.ToolCallError -> text.append(e.raw)
            is ChatEvent.Done -> stats = e.stats
        }
    }
    val done = stats ?: throw HearthException.Internal("the turn ended without its figures")
    return Response(text.toString(), thinking?.toString(), calls, done)
}

/**
 * Downloads (or resumes) [model] into the store's directory, streaming progress; the flow
 * completes once the file is verified, and its last item's `path` is the installed file's
 * (`null` in every other item). Cancelling the collector stops the download and keeps
 * the partial file for a later resume.
 */
fun ModelStore.download(model: ModelRef): Flow<DownloadProgress> = callbackFlow {
    val cancel = CancelHandle()
    val sender = BlockingSender(channel)
    val listener = object : DownloadListener {
        override fun onProgress(progress: DownloadProgress) {
            sender.send(progress)
        }
    }
    launch(Dispatchers.IO) {
        try {
            download(model, listener, cancel)
            close()
        } catch (e: HearthException.Cancelled) {
            close(CancellationException(e.message))
        } catch (e: HearthException) {
            close(e)
        }
    }
    awaitClose {
        cancel.cancel()
        sender.close()
    }
}

/**
 * Blocking sends from an engine thread into a flow's channel that closing the flow always wakes.
 * `trySendBlocking` is not enough: a send parked on an unbuffered channel can stay parked after
 * the collector cancels (kotlinx.coroutines#3952), and the engine thread — holding the session —
 * would never return, so the next call on that session would hang.
 */
private class BlockingSender<T>(private val channel: SendChannel<T>) {
    private val closing = AtomicBoolean(false)
    private val parked = AtomicReference<Job?>(null)

    /** Sends [element], waiting while the collector is slow; false once the flow is closed. */
    fun send(element: T): Boolean {
        if (closing.get()) return false
        if (channel.trySend(element).isSuccess) return true
        return try {
            runBlocking {
                parked.set(coroutineContext[Job])
                // Checked after publishing the job: close() either sees the job or we see the flag.
                if (closing.get()) return@runBlocking false
                runCatching { channel.send(element) }.isSuccess
            }
        } catch (_: CancellationException) {
            false
        } finally {
            parked.set(null)
        }
    }

    /** Fails the send in progress, if any, and every later one. */
    fun close() {
        closing.set(true)
        parked.get()?.cancel()
    }
}
