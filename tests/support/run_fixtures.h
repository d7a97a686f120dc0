// A small LM fine-tuning request over a toy model directory, for tests that run the whole loop.
#pragma once

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pocketllm/client/finetune.h"

namespace pocketllm::test {

// 2 threads, batches of 4, lr 1e-2, eps 1e-3, snapshots every 4 steps; the caller sets what its test is about.
inline FinetuneRequest toy_lm_request(const std::string& model_dir, const std::string& out, int steps) {
  FinetuneRequest r;
  r.out_dir = out;
  r.threads = 2;
  r.spec.model_path = model_dir;
  r.spec.data_path = model_dir + "/train.txt";
  r.spec.train.steps = steps;
  r.spec.train.batch_size = 4;
  r.spec.train.lr = 1e-2f;
  r.spec.train.eps = 1e-3f;
  r.spec.snapshot_every = 4;
  r.spec.task.kind = "lm";
  return r;
}

// A run directory's log, one JSON object a line.
inline std::vector<nlohmann::json> log_lines(const std::string& run) {
  std::ifstream f(run + "/log.jsonl");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// A file's bytes ("" when it cannot be read).
inline std::string file_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace pocketllm::test
