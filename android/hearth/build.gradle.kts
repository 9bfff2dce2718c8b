// The Hearth SDK as an Android library (AAR): the generated Kotlin bindings and the hand-written
// wrappers in src/main/kotlin, the native libhearth_ffi.so per ABI in src/main/jniLibs (built by
// scripts/build-android.sh with cargo-ndk; not committed).
plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "dev.hearth"
    compileSdk = 36

    defaultConfig {
        // API 29 (Android 10): Vulkan 1.1 is mandatory on 64-bit devices from Android 10 on, and
        // wgpu's Vulkan backend (with the 16-bit storage the f16 kernels use, core in 1.1) needs
        // it; older devices would only ever run the CPU path. Must equal --platform in
        // scripts/build-android.sh.
        minSdk = 29
        consumerProguardFiles("consumer-rules.pro")
        ndk {
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            java.srcDirs("src/main/kotlin")
            jniLibs.srcDirs("src/main/jniLibs")
        }
    }

    packaging {
        jniLibs {
            // Uncompressed, page-aligned .so files (16 KB pages on Android 15+ devices).
            useLegacyPackaging = false
        }
    }
}

kotlin {
    // Bytecode target only: no toolchain download, any JDK >= 17 (Android Studio's JBR) builds it.
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
}

dependencies {
    // @aar: the Android artifact with the per-ABI libjnidispatch.so (the plain jar has desktop natives).
    implementation(libs.jna) { artifact { type = "aar" } }
    implementation(libs.kotlinx.coroutines.android)
    // The generated bindings annotate the API-33 SystemCleaner path with @RequiresApi.
    implementation(libs.androidx.annotation)
}
