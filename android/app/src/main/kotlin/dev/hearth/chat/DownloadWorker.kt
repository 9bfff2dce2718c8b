package dev.hearth.chat

import android.app.NotificationChannel
import android.app.NotificationManager
import android.content.Context
import android.content.pm.ServiceInfo
import androidx.core.app.NotificationCompat
import androidx.work.CoroutineWorker
import androidx.work.ExistingWorkPolicy
import androidx.work.ForegroundInfo
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import androidx.work.workDataOf
import dev.hearth.chat.logic.DownloadLauncher
import dev.hearth.chat.logic.DownloadState
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch

/**
 * Downloads run as WorkManager work with a foreground notification, so they go on while the app
 * is in the background. Pause and cancel stop the work (the DownloadMachine records which);
 * the SDK keeps the partial file and the next run resumes it.
 */
class WorkManagerLauncher(private val context: Context) : DownloadLauncher {
    override fun start(file: String) {
        val request = OneTimeWorkRequestBuilder<DownloadWorker>()
            .setInputData(workDataOf(DownloadWorker.FILE to file))
            .build()
        WorkManager.getInstance(context).enqueueUniqueWork(name(file), ExistingWorkPolicy.KEEP, request)
    }

    override fun stop(file: String) {
        WorkManager.getInstance(context).cancelUniqueWork(name(file))
    }

    private fun name(file: String) = "download:$file"
}

class DownloadWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val file = inputData.getString(FILE) ?: return Result.failure()
        val machine = applicationContext.chatState.downloads
        if (machine.rows.value.isEmpty()) machine.refresh()
        setForeground(foregroundInfo(file, null))
        // Mirror the machine's progress into the notification while the download runs.
        val progress = applicationContext.chatState.scope.launch {
            machine.rows.collect { rows ->
                val s = rows.firstOrNull { it.file == file }?.state as? DownloadState.Downloading ?: return@collect
                setForeground(foregroundInfo(file, s.fraction))
            }
        }
        try {
            machine.runDownload(file)
        } finally {
            progress.cancel()
        }
        return when (machine.rows.first().firstOrNull { it.file == file }?.state) {
            is DownloadState.Installed -> Result.success()
            else -> Result.failure()
        }
    }

    private fun foregroundInfo(file: String, fraction: Float?): ForegroundInfo {
        val nm = applicationContext.getSystemService(NotificationManager::class.java)
        nm.createNotificationChannel(NotificationChannel(CHANNEL, "Model downloads", NotificationManager.IMPORTANCE_LOW))
        val pct = fraction?.let { (it * 100).toInt() }
        val n = NotificationCompat.Builder(applicationContext, CHANNEL)
            .setSmallIcon(android.R.drawable.stat_sys_download)
            .setContentTitle("Downloading $file")
            .setContentText(pct?.let { "$it %" } ?: "Starting…")
            .setProgress(100, pct ?: 0, pct == null)
            .setOngoing(true)
            .setOnlyAlertOnce(true)
            .build()
        return ForegroundInfo(file.hashCode(), n, ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
    }

    companion object {
        const val FILE = "file"
        const val CHANNEL = "downloads"
    }
}
