package dev.pocketllm;

/** Progress of a long call, on the thread that made the call; return false to stop it. */
@FunctionalInterface
public interface ProgressListener {
  boolean onProgress(float fraction);
}
