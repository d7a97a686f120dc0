#include "pocketllm/sim/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace pocketllm::sim {
namespace {

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, std::fabs(v) >= 1e4 || (std::fabs(v) < 1e-2 && v != 0) ? "%.3g" : "%.4g", v);
  return b;
}

void chart(std::ostringstream& o, const Series& s, double ox, double oy, double w, double h) {
  const double pl = 60, pb = 40, pt = 10, pr = 15;
  double x0 = s.x.empty() ? 0 : *std::min_element(s.x.begin(), s.x.end()), x1 = s.x.empty() ? 1 : *std::max_element(s.x.begin(), s.x.end());
  double y0 = s.y.empty() ? 0 : *std::min_element(s.y.begin(), s.y.end()), y1 = s.y.empty() ? 1 : *std::max_element(s.y.begin(), s.y.end());
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad;
  y1 += pad;
  auto X = [&](double x) { return ox + pl + (x - x0) / (x1 - x0) * (w - pl - pr); };
  auto Y = [&](double y) { return oy + pt + (1 - (y - y0) / (y1 - y0)) * (h - pt - pb); };
  o << "<rect x='" << ox + pl << "' y='" << oy + pt << "' width='" << w - pl - pr << "' height='" << h - pt - pb
    << "' fill='none' stroke='#888'/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double yv = y0 + (y1 - y0) * i / 4, xv = x0 + (x1 - x0) * i / 4;
    o << "<text x='" << ox + pl - 5 << "' y='" << Y(yv) + 4 << "' font-size='11' text-anchor='end'>" << fmt(yv) << "</text>\n";
    o << "<text x='" << X(xv) << "' y='" << oy + h - pb + 15 << "' font-size='11' text-anchor='middle'>" << fmt(xv) << "</text>\n";
  }
  o << "<text x='" << ox + pl + (w - pl - pr) / 2 << "' y='" << oy + h - 5 << "' font-size='12' text-anchor='middle'>" << s.x_label << "</text>\n";
  o << "<text x='" << ox + 14 << "' y='" << oy + pt + (h - pt - pb) / 2 << "' font-size='12' text-anchor='middle' transform='rotate(-90 "
    << ox + 14 << " " << oy + pt + (h - pt - pb) / 2 << ")'>" << s.y_label << "</text>\n";
  o << "<polyline fill='none' stroke='#1f77b4' stroke-width='2' points='";
  for (size_t i = 0; i < s.x.size(); ++i) o << X(s.x[i]) << "," << Y(s.y[i]) << " ";
  o << "'/>\n";
  for (size_t i = 0; i < s.x.size(); ++i) o << "<circle cx='" << X(s.x[i]) << "' cy='" << Y(s.y[i]) << "' r='2.5' fill='#1f77b4'/>\n";
}

}  // namespace

std::string svg_charts(const std::string& title, const std::vector<Series>& charts) {
  const double w = 420, h = 300, n = static_cast<double>(std::max<size_t>(1, charts.size()));
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << n * w << "' height='" << h + 30 << "' font-family='sans-serif'>\n";
  o << "<rect width='100%' height='100%' fill='white'/>\n";
  o << "<text x='" << n * w / 2 << "' y='20' font-size='14' text-anchor='middle'>" << title << "</text>\n";
  for (size_t i = 0; i < charts.size(); ++i) chart(o, charts[i], static_cast<double>(i) * w, 30, w, h);
  o << "</svg>\n";
  return o.str();
}

}  // namespace pocketllm::sim
