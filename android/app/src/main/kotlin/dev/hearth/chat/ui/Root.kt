package dev.hearth.chat.ui

import androidx.compose.foundation.layout.padding
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.automirrored.filled.Chat
import androidx.compose.material.icons.filled.Download
import androidx.compose.material.icons.automirrored.filled.List
import androidx.compose.material.icons.filled.Settings
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Icon
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.NavigationBar
import androidx.compose.material3.NavigationBarItem
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.material3.darkColorScheme
import androidx.compose.material3.lightColorScheme
import androidx.compose.foundation.isSystemInDarkTheme
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.vector.ImageVector
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.hearth.chat.ChatAppState

enum class Tab(val label: String, val icon: ImageVector) {
    CHAT("Chat", Icons.AutoMirrored.Filled.Chat),
    CONVERSATIONS("Chats", Icons.AutoMirrored.Filled.List),
    MODELS("Models", Icons.Filled.Download),
    SETTINGS("Settings", Icons.Filled.Settings),
}

@Composable
fun HearthChatRoot(app: ChatAppState) {
    val scheme = if (isSystemInDarkTheme()) darkColorScheme() else lightColorScheme()
    MaterialTheme(colorScheme = scheme) {
        val modelName by app.modelName.collectAsStateWithLifecycle()
        var tab by rememberSaveable { mutableStateOf(if (modelName == null) Tab.MODELS else Tab.CHAT) }
        val notice by app.notice.collectAsStateWithLifecycle()
        Scaffold(
            bottomBar = {
                NavigationBar {
                    Tab.entries.forEach { t ->
                        NavigationBarItem(
                            selected = tab == t,
                            onClick = { tab = t },
                            icon = { Icon(t.icon, contentDescription = t.label) },
                            label = { Text(t.label) },
                        )
                    }
                }
            },
        ) { padding ->
            val m = Modifier.padding(padding)
            when (tab) {
                Tab.CHAT -> ChatScreen(app, m, onPickModel = { tab = Tab.MODELS })
                Tab.CONVERSATIONS -> ConversationsScreen(app, m, onOpen = { tab = Tab.CHAT })
                Tab.MODELS -> ModelsScreen(app, m, onLoaded = { tab = Tab.CHAT })
                Tab.SETTINGS -> SettingsScreen(app, m)
            }
        }
        notice?.let { text ->
            AlertDialog(
                onDismissRequest = app::dismissNotice,
                confirmButton = { TextButton(onClick = app::dismissNotice) { Text("OK") } },
                text = { Text(text) },
            )
        }
    }
}
