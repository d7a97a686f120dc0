package dev.pocketllm;

/**
 * A cancellation flag for long calls. {@link #cancel()} may be called from any thread while a call that
 * was given this object runs; that call then throws a {@link PocketLlmException} with status CANCELLED.
 */
public final class Cancellation implements AutoCloseable {
  long handle;

  public Cancellation() { handle = Native.cancelNew(); }

  public void cancel() { Native.cancelRequest(handle); }

  public void reset() { Native.cancelReset(handle); }

  @Override public synchronized void close() {
    if (handle != 0) Native.cancelFree(handle);
    handle = 0;
  }

  static long of(Cancellation c) { return c == null ? 0 : c.handle; }
}
