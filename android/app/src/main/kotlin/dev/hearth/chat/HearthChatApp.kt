package dev.hearth.chat

import android.app.ActivityManager
import android.app.Application
import android.content.ComponentCallbacks2
import android.content.Context
import androidx.lifecycle.DefaultLifecycleObserver
import androidx.lifecycle.LifecycleOwner
import androidx.lifecycle.ProcessLifecycleOwner
import dev.hearth.ChatSession
import dev.hearth.HearthException
import dev.hearth.HearthModel
import dev.hearth.ModelInfo
import dev.hearth.ModelStore
import dev.hearth.chat.logic.ChatController
import dev.hearth.chat.logic.ChatSettings
import dev.hearth.chat.logic.Conversation
import dev.hearth.chat.logic.ConversationStore
import dev.hearth.chat.logic.DemoTools
import dev.hearth.chat.logic.DownloadMachine
import dev.hearth.chat.logic.SessionTurns
import dev.hearth.chat.logic.SettingsModel
import dev.hearth.chat.logic.ThermalLevel
import dev.hearth.chat.logic.describe
import dev.hearth.info
import dev.hearth.load
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.io.File

/** The process-wide app state: one per process, so that downloads and a chat survive the UI. */
class HearthChatApp : Application() {
    lateinit var state: ChatAppState
        private set

    override fun onCreate() {
        super.onCreate()
        state = ChatAppState(this)
        // The whole process going to the background (not an activity being recreated).
        ProcessLifecycleOwner.get().lifecycle.addObserver(object : DefaultLifecycleObserver {
            override fun onStop(owner: LifecycleOwner) = state.onBackground()
        })
    }

    override fun onTrimMemory(level: Int) {
        super.onTrimMemory(level)
        state.onTrimMemory(level)
    }
}

val Context.chatState: ChatAppState get() = (applicationContext as HearthChatApp).state

/**
 * Glue between Android and the app logic: owns the loaded model, the open conversation's SDK
 * session and its [ChatController]. Views only read its StateFlows and call its functions.
 */
class ChatAppState(private val context: Context) {
    val scope = CoroutineScope(SupervisorJob() + Dispatchers.Main.immediate)
    val settings = SettingsModel(File(context.filesDir, "settings.json"))
    val tools = DemoTools()
    private val modelsDir = File(context.filesDir, "models").apply { mkdirs() }
    val store = ModelStore(modelsDir.path)
    val conversations = ConversationStore(File(context.filesDir, "conversations"))
    val downloads = DownloadMachine(store, modelsDir, scope, totalMemory(), WorkManagerLauncher(context))

    private var model: HearthModel? = null
    private var loadedWith: ChatSettings? = null
    private var session: ChatSession? = null
    private var conversation: Conversation? = null

    private val _modelInfo = MutableStateFlow<ModelInfo?>(null)
    val modelInfo: StateFlow<ModelInfo?> = _modelInfo.asStateFlow()
    private val _modelName = MutableStateFlow<String?>(null)
    val modelName: StateFlow<String?> = _modelName.asStateFlow()
    private val _loading = MutableStateFlow<Float?>(null)
    val loading: StateFlow<Float?> = _loading.asStateFlow()
    private val _controller = MutableStateFlow<ChatController?>(null)
    val controller: StateFlow<ChatController?> = _controller.asStateFlow()
    private val _notice = MutableStateFlow<String?>(null)
    /** App-level notices and errors in plain language (model unloaded, load failed, …). */
    val notice: StateFlow<String?> = _notice.asStateFlow()
    private var thermal = ThermalLevel.NOMINAL

    init {
        scope.launch(Dispatchers.IO) { downloads.refresh() }
    }

    fun dismissNotice() {
        _notice.value = null
    }

    /** Loads the installed model at [path] with the backend and context from Settings. */
    fun loadModel(path: String) = scope.launch {
        closeModel()
        val s = settings.settings.value
        _loading.value = 0f
        try {
            val m = HearthModel.load(path, s.modelOptions(cacheDir = context.cacheDir.path)) { p -> _loading.value = p.fraction }
            model = m
            loadedWith = s
            _modelInfo.value = m.info
            _modelName.value = File(path).name
            openConversation(conversation?.id)
        } catch (e: HearthException) {
            _notice.value = describe(e)
        } finally {
            _loading.value = null
        }
    }

    /** Opens a stored conversation (or a new one for null) on the loaded model. */
    fun openConversation(id: String?) {
        val m = model ?: run { _notice.value = "Download or import a model first (Models tab)."; return }
        saveAndCloseSession()
        val c = id?.let { conversations.load(it) } ?: conversations.create(settings.settings.value)
        conversation = c
        val s = try {
            conversations.openSession(m, c, settings.settings.value.sessionOptions(tools.specs))
        } catch (e: HearthException) {
            _notice.value = describe(e)
            return
        }
        session = s
        val ctl = ChatController(
            SessionTurns(s), scope, { settings.settings.value }, initial = c.messages,
            backend = _modelInfo.value?.backend, tools = tools,
            onTurnFinished = { messages -> conversation = conversation?.let { conversations.update(it, messages, _modelName.value) } },
        )
        ctl.setThermal(thermal)
        _controller.value = ctl
    }

    fun deleteConversation(id: String) {
        if (conversation?.id == id) {
            saveAndCloseSession(save = false)
            conversation = null
            _controller.value = null
        }
        conversations.delete(id)
    }

    /** The app went to the background: stop generating cleanly (resumable) and save the cache. */
    fun onBackground() {
        _controller.value?.interrupt("Stopped when the app went to the background. Tap Resume to continue.")
        val c = conversation ?: return
        val s = session ?: return
        scope.launch(Dispatchers.IO) {
            try {
                conversations.saveCache(c.id, s)
            } catch (_: HearthException) {
                // The conversation's messages are saved anyway; only reopening is slower.
            }
        }
    }

    /**
     * Android asks for memory back. First step: free the idle session's caches (the chat stays;
     * the next message prefills it again). Under real pressure: unload the model with a notice.
     */
    fun onTrimMemory(level: Int) {
        if (level == ComponentCallbacks2.TRIM_MEMORY_RUNNING_MODERATE) {
            val s = session ?: return
            if (_controller.value?.state?.value?.generating == true) return
            scope.launch(Dispatchers.IO) { s.releaseMemory() }
            return
        }
        if (level < ComponentCallbacks2.TRIM_MEMORY_RUNNING_LOW && level != ComponentCallbacks2.TRIM_MEMORY_COMPLETE) return
        if (model == null) return
        _controller.value?.interrupt("Stopped: the system is short of memory.")
        closeModel()
        _notice.value = "The model was unloaded because the system needed memory. Load it again from the Models tab."
    }

    fun onThermal(level: ThermalLevel) {
        thermal = level
        _controller.value?.setThermal(level)
    }

    private fun saveAndCloseSession(save: Boolean = true) {
        val s = session ?: return
        val c = conversation
        session = null
        scope.launch(Dispatchers.IO) {
            try {
                if (save && c != null) conversations.saveCache(c.id, s)
            } catch (_: HearthException) {
                // Best effort, see onBackground.
            } finally {
                s.close()
            }
        }
    }

    private fun closeModel() {
        _controller.value?.stop()
        _controller.value = null
        saveAndCloseSession()
        model?.let { m -> scope.launch { withContext(Dispatchers.IO) { m.close() } } }
        model = null
        _modelInfo.value = null
        _modelName.value = null
    }

    /** Settings changed backend or context: reload the model for them to apply. */
    fun settingsNeedReload(): Boolean = loadedWith?.let { settings.needsReload(it) } ?: false

    private fun totalMemory(): Long {
        val am = context.getSystemService(ActivityManager::class.java)
        return ActivityManager.MemoryInfo().also { am.getMemoryInfo(it) }.totalMem
    }
}
