// Hearth Android SDK. Open this folder in Android Studio; build the native libraries first with
// scripts/build-android.sh (it also runs the Gradle build).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "hearth-android"
include(":hearth")
// The sample chat app (HearthChat), built on :hearth.
include(":app")
