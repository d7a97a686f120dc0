import dev.pocketllm.Model;
import dev.pocketllm.PocketLlm;

/** JNI call overhead: a Java call into the library and back, against a plain Java call, medians of 7 rounds. */
public final class JniBench {
  private static long sink;

  private static long javaCount(long x) { return x + 1; }

  public static void main(String[] args) {
    final int n = 1_000_000;
    try (Model m = Model.load(args[0])) {
      double[] jni = new double[7], plain = new double[7], str = new double[7];
      for (int round = 0; round < 7; ++round) {
        long t0 = System.nanoTime();
        for (int i = 0; i < n; ++i) sink += m.parameterCount();
        jni[round] = (System.nanoTime() - t0) / (double) n;
        t0 = System.nanoTime();
        for (int i = 0; i < n; ++i) sink += javaCount(i);
        plain[round] = (System.nanoTime() - t0) / (double) n;
        t0 = System.nanoTime();
        for (int i = 0; i < n / 10; ++i) sink += PocketLlm.version().length();
        str[round] = (System.nanoTime() - t0) / (double) (n / 10);
      }
      java.util.Arrays.sort(jni);
      java.util.Arrays.sort(plain);
      java.util.Arrays.sort(str);
      System.out.printf("{\"mode\":\"jni\",\"ns_per_call_long\":%.1f,\"ns_per_call_string\":%.1f,\"ns_per_java_call\":%.2f,\"sink\":%d}%n",
          jni[3], str[3], plain[3], sink % 10);
    }
  }
}
