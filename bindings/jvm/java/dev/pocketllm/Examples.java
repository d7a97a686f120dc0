package dev.pocketllm;

/**
 * The user's private examples, collected in memory and written (JSONL, created with mode 0600, atomically) to a file
 * in the app's private storage: that path is then the dataPath of a session, an evaluation or a device.
 */
public final class Examples implements AutoCloseable {
  private long handle;

  public Examples() {
    handle = Native.examplesNew();
  }

  /** A text for language modelling (non-empty). */
  public Examples addText(String text) {
    Native.examplesAddText(live(), Native.utf8(text));
    return this;
  }

  /** A prompt and its completion (the loss is on the completion; non-empty). */
  public Examples addCompletion(String prompt, String completion) {
    Native.examplesAddCompletion(live(), Native.utf8(prompt), Native.utf8(completion));
    return this;
  }

  /** A text and its label, for "classify" (both non-empty). */
  public Examples addLabelled(String text, String label) {
    Native.examplesAddLabelled(live(), Native.utf8(text), Native.utf8(label));
    return this;
  }

  public long count() { return Native.examplesCount(live()); }

  /** Replaces the file at path with the examples (at least one). */
  public void write(String path) { Native.examplesWrite(live(), Native.utf8(path)); }

  private long live() {
    if (handle == 0) throw new IllegalStateException("the examples are closed");
    return handle;
  }

  @Override public void close() {
    if (handle != 0) Native.examplesFree(handle);
    handle = 0;
  }
}
