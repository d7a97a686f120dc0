package dev.pocketllm;

/** What a model takes in memory (Model.estimateMemory): its weights as stored, one forward pass's activations, both. */
public final class MemoryEstimate {
  public final long weightsBytes, activationBytes, totalBytes;

  MemoryEstimate(long weightsBytes, long activationBytes, long totalBytes) {
    this.weightsBytes = weightsBytes;
    this.activationBytes = activationBytes;
    this.totalBytes = totalBytes;
  }

  @Override public String toString() {
    return "MemoryEstimate{weights " + weightsBytes + " B, activations " + activationBytes + " B, total " + totalBytes + " B}";
  }
}
