// A dependency-free SVG line chart: the simulator's accuracy/loss curves vs round and vs bytes.
#pragma once

#include <string>
#include <vector>

namespace pocketllm::sim {

struct Series {
  std::string x_label, y_label;
  std::vector<double> x, y;
};

// Charts side by side, titled `title`.
std::string svg_charts(const std::string& title, const std::vector<Series>& charts);
inline std::string svg_charts(const std::string& title, const Series& left, const Series& right) {
  return svg_charts(title, std::vector<Series>{left, right});
}

}  // namespace pocketllm::sim
