// The report's sentences and its HTML page (report.h).
#include <cmath>
#include <sstream>

#include "core/analysis/interval_text.h"
#include "core/report/report.h"

namespace kdscope::core {

namespace report {

std::string who(const std::string& model) { return model == "teacher" ? "the teacher" : "student " + model; }

std::string points(double fraction) { return analysis::numberText(100.0 * fraction, 1); }

std::string differenceSentence(const std::string& first, const std::string& second, const std::string& task,
                               const analysis::Interval& difference, double pValue, const std::string& test,
                               const std::string& basis, const analysis::AdjustedP& holm) {
  const std::string testText = analysis::pValuesText(pValue, holm, test + " p");
  if (analysis::detectable(difference, analysis::verdictP(pValue, holm))) {
    const bool firstBetter = difference.estimate > 0;
    const double sign = firstBetter ? 1.0 : -1.0;
    const double lo = firstBetter ? difference.lo : -difference.hi;
    const double hi = firstBetter ? difference.hi : -difference.lo;
    return who(firstBetter ? first : second) + " beats " + who(firstBetter ? second : first) + " on " + task + " by " +
           points(sign * difference.estimate) + " points (95% CI " + points(lo) + " to " + points(hi) + ", " +
           testText + ", " + basis + ")";
  }
  return std::string(analysis::kNoDetectableDifference) + " between " + who(first) + " and " + who(second) + " on " +
         task + ": " + who(first) + " minus " + who(second) + " " + points(difference.estimate) + " points (95% CI " +
         points(difference.lo) + " to " + points(difference.hi) + ", " + testText + ", " + basis + ")";
}

std::string differenceSentence(const std::string& first, const std::string& second, const std::string& task,
                               const analysis::PairedComparison& test, const analysis::AdjustedP& holm,
                               const std::string& basis) {
  return differenceSentence(first, second, task, test.difference, test.pValue, test.test, basis, holm);
}

std::string valueWithInterval(const analysis::Interval& interval, const std::string& basis, int decimals) {
  if (std::isnan(interval.lo) || std::isnan(interval.hi)) {
    return analysis::numberText(interval.estimate, decimals) + " (" + basis + "; no interval: " +
           (interval.count < 2 ? "a single value" : "not computed") + ")";
  }
  return analysis::numberText(interval.estimate, decimals) + " (95% CI " + analysis::numberText(interval.lo, decimals) +
         " to " + analysis::numberText(interval.hi, decimals) + ", " + basis + ")";
}

} // namespace report

namespace {

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    default: out += c;
    }
  }
  return out;
}

/// The SVG element alone: no XML prolog or DOCTYPE, which are not allowed inside HTML.
std::string inlineSvg(const std::string& svg) {
  const auto start = svg.find("<svg");
  return start == std::string::npos ? std::string() : svg.substr(start);
}

constexpr const char* kCss = R"(body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #345}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
ul.findings li{margin:.3em 0}table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#eef}
caption{caption-side:top;text-align:left;font-style:italic;padding:.2em 0}p.note{color:#555;font-size:.9em}
p.source{color:#555}figure{margin:1.5em 0}figcaption{font-size:.9em;color:#444}svg{max-width:100%;height:auto})";

} // namespace

std::string reportHtml(const Report& report, const std::vector<ReportFigure>& figures) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << escape(report.title)
      << "</title>\n<style>\n" << kCss << "\n</style>\n</head>\n<body>\n<h1>" << escape(report.title) << "</h1>\n"
      << "<p class=\"source\">Source: <code>" << escape(report.source) << "</code></p>\n";
  for (const auto& p : report.preamble) {
    out << "<p>" << escape(p) << "</p>\n";
  }
  for (const auto& section : report.sections) {
    out << "<h2>" << escape(section.heading) << "</h2>\n";
    if (!section.findings.empty()) {
      out << "<ul class=\"findings\">\n";
      for (const auto& f : section.findings) {
        out << "<li>" << escape(f) << "</li>\n";
      }
      out << "</ul>\n";
    }
    for (const auto& table : section.tables) {
      out << "<table>\n<caption>" << escape(table.caption) << "</caption>\n<tr>";
      for (const auto& h : table.header) {
        out << "<th>" << escape(h) << "</th>";
      }
      out << "</tr>\n";
      for (const auto& row : table.rows) {
        out << "<tr>";
        for (const auto& cell : row) {
          out << "<td>" << escape(cell) << "</td>";
        }
        out << "</tr>\n";
      }
      out << "</table>\n";
    }
    for (const auto& note : section.notes) {
      out << "<p class=\"note\">" << escape(note) << "</p>\n";
    }
  }
  if (!figures.empty()) {
    out << "<h2>Figures</h2>\n";
    for (const auto& f : figures) {
      out << "<figure id=\"" << escape(f.name) << "\">\n";
      if (!f.imageFile.empty()) {
        out << "<img src=\"" << escape(f.imageFile) << "\" width=\"600\">\n";
      } else {
        out << inlineSvg(f.svg) << "\n";
      }
      out << "<figcaption><b>" << escape(f.name) << "</b>: " << escape(f.caption) << "</figcaption>\n</figure>\n";
    }
  }
  out << "</body>\n</html>\n";
  return out.str();
}

} // namespace kdscope::core
