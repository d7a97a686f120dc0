package dev.pocketllm;

import java.nio.charset.StandardCharsets;

/** The JNI entry points (libpocketllm_jni). Strings cross as UTF-8 bytes: JNI's own string form is not UTF-8. */
final class Native {
  static {
    String explicit = System.getProperty("pocketllm.jni.path");
    if (explicit != null) System.load(explicit); else System.loadLibrary("pocketllm_jni");
  }

  private Native() {}

  // A NUL would end the C string early: "run\0x" would name the directory "run", silently.
  static byte[] utf8(String s) {
    if (s == null) return null;
    if (s.indexOf('\0') >= 0) throw new IllegalArgumentException("a string passed to pocketllm contains a NUL character");
    return s.getBytes(StandardCharsets.UTF_8);
  }
  static String string(byte[] b) { return b == null ? null : new String(b, StandardCharsets.UTF_8); }

  static native String version();
  static native String systemInfo();

  static native void setLogListener(LogListener listener, int minLevel);

  static native long cancelNew();
  static native void cancelRequest(long cancel);
  static native void cancelReset(long cancel);
  static native void cancelFree(long cancel);

  static native long modelLoad(byte[] path, int threads, long budget, long cancel);
  static native void modelFree(long model);
  static native byte[] modelId(long model);
  static native long modelParams(long model);
  static native boolean modelIsTrained(long model);
  static native byte[] modelInfo(long model);
  static native int modelContextLength(long model);
  static native int countTokens(long model, byte[] text);
  static native byte[] generate(long model, long device, byte[] prompt, GenerateOptions options, TokenListener listener,
                                long cancel);
  static native long[] estimateMemory(byte[] path, int batchSize, int maxLength);
  static native double[] evaluate(long model, long device, byte[] dataPath, byte[] task, byte[] labels, ProgressListener listener,
                                  long cancel);
  static native float[] classify(long model, long device, byte[] text, byte[] preset, byte[] template, byte[] labels, int[] labelOut,
                                 long cancel);

  // sessionOpen and deviceOpen read the options' fields by name (META-INF/proguard/pocketllm.pro keeps them).
  static native long sessionOpen(long model, TrainingSession.Options options, long cancel);
  static native int sessionTrain(long session, int maxSteps, ProgressListener listener, long cancel, double[] lossOut);
  static native int sessionStepsDone(long session);
  static native int sessionTotalSteps(long session);
  static native void sessionFree(long session);

  static native long deviceOpen(long model, Transport transport, FederatedDevice.Options options, long cancel);
  static native long deviceSync(long device, long cancel);
  static native long deviceRunRound(long device, long cancel);
  static native void devicePersonalize(long device, int steps, float lr, long seed, long cancel);
  static native long deviceBytes(long device, boolean sent);
  static native void deviceFree(long device);

  static native void exportRun(byte[] runDir, byte[] out, byte[] format, byte[] type);

  static native long examplesNew();
  static native void examplesAddText(long examples, byte[] text);
  static native void examplesAddCompletion(long examples, byte[] prompt, byte[] completion);
  static native void examplesAddLabelled(long examples, byte[] text, byte[] label);
  static native long examplesCount(long examples);
  static native void examplesWrite(long examples, byte[] path);
  static native void examplesFree(long examples);
}
