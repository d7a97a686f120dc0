package dev.pocketllm;

/**
 * A cancellation flag for long calls. {@link #cancel()} may be called from any thread while a call that
 * was given this object runs; that call then throws a {@link PocketLlmException} with status CANCELLED.
 */
public final class Cancellation implements AutoCloseable {
  long handle;

  public Cancellation() { handle = Native.cancelNew(); }

  // Synchronized with close: a "stop" tapped on the UI thread just as the worker's try-with-resources
  // closes this object must not write to the freed flag. After close both are no-ops.
  public synchronized void cancel() { Native.cancelRequest(handle); }

  public synchronized void reset() { Native.cancelReset(handle); }

  @Override public synchronized void close() {
    if (handle != 0) Native.cancelFree(handle);
    handle = 0;
  }

  static long of(Cancellation c) { return c == null ? 0 : c.handle; }
}
