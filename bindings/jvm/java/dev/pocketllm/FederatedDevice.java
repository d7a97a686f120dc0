package dev.pocketllm;

/**
 * A device of a federated task on a {@link Model}: it trains on its own data along the server's seeds and uploads
 * only scalars, through the app's {@link Transport}. While open it holds the model; after close the model keeps the
 * device's weights. Calls block and may do network requests: never on the UI thread.
 */
public final class FederatedDevice implements AutoCloseable {
  /** Where the device keeps its credential and state, and what it trains on. */
  public static final class Options {
    public String serverUrl, credentialsPath, enrolmentToken, taskId, dataPath, stateDir;
    /**
     * 0: no limit. Otherwise the device is refused (MEMORY_BUDGET) when the task's rounds would take more; within
     * it, a step's two forward passes run at once only when both fit.
     */
    public long memoryBudgetBytes;
  }

  private long handle;
  private final Transport transport;  // kept reachable for as long as the native device calls it

  private FederatedDevice(long handle, Transport transport) {
    this.handle = handle;
    this.transport = transport;
  }

  /** Connects through transport (enrolling when needed), checks the model is the task's, loads the data. */
  public static FederatedDevice open(Model model, Options o, Transport transport, Cancellation cancel) {
    if (o == null) throw new IllegalArgumentException("options are required");
    return new FederatedDevice(Native.deviceOpen(model.live(), transport, o, Cancellation.of(cancel)), transport);
  }

  /** Brings the shared weights to the server's latest version; returns it. */
  public long sync(Cancellation cancel) { return Native.deviceSync(live(), Cancellation.of(cancel)); }

  /** Takes part in the open round if it has not yet: returns the round id submitted to, or 0 when it did not submit. */
  public long runRound(Cancellation cancel) { return Native.deviceRunRound(live(), Cancellation.of(cancel)); }

  /** Local steps on the device's own data, never uploaded, kept on top of every sync. */
  public void personalize(int steps, float lr, long seed, Cancellation cancel) {
    Native.devicePersonalize(live(), steps, lr, seed, Cancellation.of(cancel));
  }

  /** {mean loss, accuracy} of the device's current weights on a data file. */
  public double[] evaluate(String dataPath) { return Native.evaluate(0, live(), Native.utf8(dataPath), null, null, null, 0); }

  /** The label the device's current weights give text under its classification task (as Model.classify). */
  public Classification classify(String text, Cancellation cancel) {
    int[] label = new int[1];
    float[] probabilities = Native.classify(0, live(), Native.utf8(text), null, null, null, label, Cancellation.of(cancel));
    return new Classification(label[0], probabilities);
  }

  public String generate(String prompt, int maxNewTokens) { return generate(prompt, maxNewTokens, true, 1.0f, 0, 1.0f, 0, null); }

  /** As {@link Model#generate(String, int, boolean, float, int, float, long, Cancellation)}, with the device's weights. */
  public String generate(String prompt, int maxNewTokens, boolean greedy, float temperature, int topK, float topP, long seed,
                         Cancellation cancel) {
    return generate(prompt, Model.options(maxNewTokens, greedy, temperature, topK, topP, seed), null, cancel);
  }

  /** As {@link Model#generate(String, GenerateOptions, TokenListener, Cancellation)}, with the device's weights. */
  public String generate(String prompt, GenerateOptions options, TokenListener listener, Cancellation cancel) {
    return Native.string(Native.generate(0, live(), Native.utf8(prompt), options, listener, Cancellation.of(cancel)));
  }

  /** Bytes of the request bodies this device sent through its transport since it was opened (JSON: scalars, no text). */
  public long bytesSent() { return Native.deviceBytes(live(), true); }

  /** Bytes of the reply bodies it received. */
  public long bytesReceived() { return Native.deviceBytes(live(), false); }

  private long live() {
    if (handle == 0) throw new IllegalStateException("the device is closed");
    return handle;
  }

  @Override public void close() {
    if (handle != 0) Native.deviceFree(handle);
    handle = 0;
  }
}
