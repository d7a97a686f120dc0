package dev.pocketllm;

/** The label a model gives a text (Model.classify): the index of the most probable label, every label's probability. */
public final class Classification {
  /** Index of the most probable label, in the order of the labels given (or the preset's). */
  public final int label;
  /** Each label's probability, in the same order; they sum to 1. */
  public final float[] probabilities;

  Classification(int label, float[] probabilities) {
    this.label = label;
    this.probabilities = probabilities;
  }

  @Override public String toString() {
    return "Classification{label " + label + ", probabilities " + java.util.Arrays.toString(probabilities) + "}";
  }
}
