package dev.pocketllm;

/** The library: versions and what this build is. */
public final class PocketLlm {
  private PocketLlm() {}

  /** The native library's version ("0.2.0"). */
  public static String version() { return Native.version(); }

  /** JSON: version, profile ("mobile"/"desktop"), instruction set, cores. */
  public static String systemInfo() { return Native.systemInfo(); }
}
