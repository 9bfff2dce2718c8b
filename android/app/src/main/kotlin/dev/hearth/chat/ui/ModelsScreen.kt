package dev.hearth.chat.ui

import android.net.Uri
import android.provider.OpenableColumns
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.hearth.chat.ChatAppState
import dev.hearth.chat.logic.DownloadState
import dev.hearth.chat.logic.Fit
import dev.hearth.chat.logic.ImportResult
import dev.hearth.chat.logic.ModelRow
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.io.File

@Composable
fun ModelsScreen(app: ChatAppState, modifier: Modifier, onLoaded: () -> Unit) {
    val rows by app.downloads.rows.collectAsStateWithLifecycle()
    val installed by app.downloads.installed.collectAsStateWithLifecycle()
    val loading by app.loading.collectAsStateWithLifecycle()
    val loadedName by app.modelName.collectAsStateWithLifecycle()
    val context = LocalContext.current
    val scope = rememberCoroutineScope()
    var importMessage by remember { mutableStateOf<String?>(null) }
    // The system file picker; the picked document is copied to the cache, validated by the SDK,
    // and only then moved into the models folder.
    val picker = rememberLauncherForActivityResult(ActivityResultContracts.OpenDocument()) { uri: Uri? ->
        if (uri == null) return@rememberLauncherForActivityResult
        scope.launch {
            val name = displayName(context, uri) ?: "imported.gguf"
            val tmp = File(context.cacheDir, name)
            withContext(Dispatchers.IO) {
                context.contentResolver.openInputStream(uri)?.use { input -> tmp.outputStream().use { input.copyTo(it) } }
            }
            importMessage = when (val r = app.downloads.importModel(tmp, name)) {
                is ImportResult.Accepted -> "Imported ${r.info.architecture} model (${r.info.quant})."
                is ImportResult.Rejected -> r.reason
            }
            tmp.delete()
        }
    }
    LazyColumn(modifier.fillMaxSize(), contentPadding = androidx.compose.foundation.layout.PaddingValues(12.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
        loading?.let { f -> item { Column { Text("Loading the model…"); LinearProgressIndicator(progress = { f }, Modifier.fillMaxWidth()) } } }
        item { Text("On this phone", style = MaterialTheme.typography.titleMedium) }
        items(installed, key = { "installed:" + it.name }) { m ->
            Card(Modifier.fillMaxWidth()) {
                Row(Modifier.padding(12.dp)) {
                    Column(Modifier.weight(1f)) {
                        Text(m.name)
                        Text("${mb(m.sizeBytes.toLong())} · ${if (m.verified) "verified" else "not verified (imported)"}", style = MaterialTheme.typography.bodySmall)
                    }
                    if (m.name == loadedName) Text("Loaded") else Button(onClick = { app.loadModel(m.path); onLoaded() }) { Text("Load") }
                }
            }
        }
        item {
            OutlinedButton(onClick = { picker.launch(arrayOf("*/*")) }) { Text("Import a GGUF file…") }
            importMessage?.let { Text(it, style = MaterialTheme.typography.bodySmall) }
        }
        item { Text("Catalogue", style = MaterialTheme.typography.titleMedium) }
        items(rows, key = { it.file }) { row -> CatalogueRow(app, row) }
    }
}

@Composable
private fun CatalogueRow(app: ChatAppState, row: ModelRow) {
    val e = row.entry
    Card(Modifier.fillMaxWidth()) {
        Column(Modifier.padding(12.dp)) {
            Text((if (row.featured) "★ " else "") + "${e.name} · ${e.quant}", style = MaterialTheme.typography.titleSmall)
            Text(e.description, style = MaterialTheme.typography.bodySmall)
            val fitColor = when (row.fit) {
                Fit.FITS -> MaterialTheme.colorScheme.primary
                Fit.TIGHT -> MaterialTheme.colorScheme.tertiary
                Fit.DOES_NOT_FIT -> MaterialTheme.colorScheme.error
            }
            Text("Download ${mb(e.sizeBytes.toLong())} · needs ${mb(e.ramBytes.toLong())} RAM · ${row.fit.label}", color = fitColor, style = MaterialTheme.typography.bodySmall)
            when (val s = row.state) {
                DownloadState.NotDownloaded -> Button(onClick = { app.downloads.start(row.file) }, enabled = row.fit != Fit.DOES_NOT_FIT) { Text("Download") }
                is DownloadState.Downloading -> {
                    LinearProgressIndicator(progress = { s.fraction ?: 0f }, Modifier.fillMaxWidth())
                    Text("${mb(s.downloadedBytes)} of ${s.totalBytes?.let { mb(it) } ?: "?"} · ${mb(s.bytesPerSecond.toLong())}/s", style = MaterialTheme.typography.bodySmall)
                    Row {
                        TextButton(onClick = { app.downloads.pause(row.file) }) { Text("Pause") }
                        TextButton(onClick = { app.downloads.cancel(row.file) }) { Text("Cancel") }
                    }
                }
                is DownloadState.Verifying -> Text("Checking the downloaded part (${mb(s.checkedBytes)})…")
                is DownloadState.Paused -> Row {
                    Text("Paused at ${mb(s.downloadedBytes)}", Modifier.weight(1f))
                    TextButton(onClick = { app.downloads.resume(row.file) }) { Text("Resume") }
                    TextButton(onClick = { app.downloads.cancel(row.file) }) { Text("Cancel") }
                }
                is DownloadState.Installed -> Row {
                    Text(if (s.verified) "Installed · SHA-256 verified" else "Installed", Modifier.weight(1f))
                    TextButton(onClick = { app.downloads.delete(row.file) }) { Text("Delete") }
                }
                is DownloadState.Failed -> Row {
                    Text(s.message, Modifier.weight(1f), color = MaterialTheme.colorScheme.error)
                    TextButton(onClick = { app.downloads.resume(row.file) }) { Text("Retry") }
                }
            }
        }
    }
}

private fun mb(bytes: Long): String =
    if (bytes >= 1L shl 30) "%.1f GB".format(bytes / 1e9) else "%.0f MB".format(bytes / 1e6)

private fun displayName(context: android.content.Context, uri: Uri): String? =
    context.contentResolver.query(uri, arrayOf(OpenableColumns.DISPLAY_NAME), null, null, null)?.use { c ->
        if (c.moveToFirst()) c.getString(0) else null
    }
