package dev.pocketllm;

/** The library: versions and what this build is. */
public final class PocketLlm {
  private PocketLlm() {}

  /** The native library's version ("0.2.0"). */
  public static String version() { return Native.version(); }

  /** JSON: version, profile ("mobile"/"desktop"), instruction set, cores. */
  public static String systemInfo() { return Native.systemInfo(); }

  /**
   * Installs the listener for the library's log lines at minLevel (LogListener.DEBUG .. ERROR) and above; null
   * removes it. Returns once no call is inside the previous listener.
   */
  public static void setLogListener(LogListener listener, int minLevel) { Native.setLogListener(listener, minLevel); }

  /**
   * Writes a run's fine-tuned model: format null or "hf" (a Hugging Face directory at out), "gguf" (one file; type
   * null or "f32", "f16", "bf16", "q8_0", "q4_0" for its 2-D weights) or "peft" (the run's LoRA adapters alone as a
   * PEFT directory: adapter_config.json and adapter_model.safetensors). Blocks: never on the UI thread.
   */
  public static void export(String runDir, String out, String format, String type) {
    Native.exportRun(Native.utf8(runDir), Native.utf8(out), Native.utf8(format), Native.utf8(type));
  }
}
