// Comparison figures of runs that are replicates of one job (issue #14): the mean over the
// replicates with its 95% Student-t interval, as error bars (accuracy) and as a band (eval
// curve, training loss), in the figure's content and CSV; runs that are not replicates get
// none. The numbers are recomputed here from the hand-made runs (test_run_file.cpp).

#include <QDir>
#include <QTemporaryDir>

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <numeric>
#include <set>
#include <vector>

#include "core/study/replicate_group.h"
#include "test_run_file.h"
#include "widgets/figures/figure_registry.h"
#include "widgets/figures/plot_widget.h"
#include "widgets/shell/run_document.h"

using namespace kdscope;
using namespace kdscope::widgets;

namespace {

constexpr double kT2 = 4.302652729911275; // t_{0.975} on 2 degrees of freedom

struct MeanAndInterval {
  double mean;
  double lo;
  double hi;
};

MeanAndInterval tInterval(const std::vector<double>& v) {
  const double n = static_cast<double>(v.size());
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double ss = 0.0;
  for (const double x : v) {
    ss += (x - mean) * (x - mean);
  }
  const double half = kT2 * std::sqrt(ss / (n - 1.0)) / std::sqrt(n);
  return {mean, mean - half, mean + half};
}

std::set<QString> replicateNames(const FigureCatalog& catalog) {
  std::set<QString> names;
  for (const FigureSpec& figure : catalog.figures()) {
    if (figure.name.startsWith(QStringLiteral("compare.replicates."))) {
      names.insert(figure.name);
    }
  }
  return names;
}

PlotContent build(const FigureCatalog& catalog, const QString& name) {
  const auto figure = catalog.find(name);
  EXPECT_TRUE(figure.has_value()) << name.toStdString();
  PlotWidget plot;
  if (figure) {
    figure->build(plot);
  }
  return plot.content();
}

} // namespace

TEST(ReplicateGroup, RunsDifferingOnlyInTheirReplicateSeedAreAGroup) {
  const auto group = core::replicateGroup({R"({"name":"a","seed":7,"replicate_seed":7})",
                                           R"({"seed":7,"name":"a","replicate_seed":9})"});
  EXPECT_TRUE(group.replicates) << group.why;
  EXPECT_EQ(group.seeds, (std::vector<std::uint64_t>{7, 9}));
  const auto other = core::replicateGroup({R"({"name":"a","seed":7,"replicate_seed":7})",
                                           R"({"name":"a","seed":8,"replicate_seed":9})"});
  EXPECT_FALSE(other.replicates);
  EXPECT_EQ(other.why, "run 2's job differs from run 1's in more than its replicate seed");
  EXPECT_EQ(core::replicateGroup({R"({"name":"a","replicate_seed":7})", R"({"name":"a","replicate_seed":7})"}).why,
            "runs share replicate seed 7");
  EXPECT_EQ(core::replicateGroup({R"({"name":"a","replicate_seed":7})", R"({"name":"a"})"}).why,
            "run 2 is not a replicate (no replicate_seed)");
  EXPECT_EQ(core::replicateGroup({R"({"name":"a","replicate_seed":7})", "not json"}).why,
            "run 2: its job (attribute \"job\") is not a JSON object");
  EXPECT_FALSE(core::replicateGroup({R"({"name":"a","replicate_seed":7})"}).replicates);
}

TEST(ReplicateGroup, BandIsTheMeanAndTIntervalAtEachX) {
  // x 1, 2 in every replicate, x 3 in one only; a NaN y leaves that replicate out at x 2.
  const double nan = std::nan("");
  const core::ReplicateBand band =
      core::replicateBand({{1, 2}, {1, 2, 3}, {2, 1}}, {{0.5, 0.6}, {0.7, nan, 0.9}, {0.8, 0.3}});
  ASSERT_EQ(band.x, (std::vector<double>{1, 2, 3}));
  const MeanAndInterval at1 = tInterval({0.5, 0.7, 0.3});
  EXPECT_NEAR(band.mean[0], at1.mean, 1e-12);
  EXPECT_NEAR(band.lo[0], at1.lo, 1e-9);
  EXPECT_NEAR(band.hi[0], at1.hi, 1e-9);
  EXPECT_EQ(band.count[1], 2U);
  EXPECT_NEAR(band.mean[1], 0.7, 1e-12);
  // Two values 0.6, 0.8: sd 0.1414, t_{0.975,1} = 12.7062.
  EXPECT_NEAR(band.hi[1] - band.mean[1], 12.706204736174698 * std::sqrt(0.02) / std::sqrt(2.0), 1e-6);
  EXPECT_EQ(band.count[2], 1U);
  EXPECT_DOUBLE_EQ(band.mean[2], 0.9);
  EXPECT_TRUE(std::isnan(band.lo[2]));
  EXPECT_THROW(core::replicateBand({{1, 2}}, {{0.5}}), std::invalid_argument);
}

TEST(ReplicateFigures, ReplicatesOfOneJobGetTheirMeanWithATIntervalAndOthersDoNot) {
  QTemporaryDir dir;
  ASSERT_TRUE(dir.isValid());
  std::vector<std::unique_ptr<RunDocument>> docs;
  for (int v = 0; v < 3; ++v) {
    const QString path = dir.filePath(QStringLiteral("rep-%1.h5").arg(11 + v));
    test::writeSmallRun(path, false, v, static_cast<std::uint64_t>(11 + v));
    docs.push_back(std::make_unique<RunDocument>(path));
  }
  const FigureCatalog catalog(std::vector<const RunDocument*>{docs[0].get(), docs[1].get(), docs[2].get()});
  const std::set<QString> names = replicateNames(catalog);
  for (const char* expected :
       {"compare.replicates.accuracy.polarity", "compare.replicates.eval_curve.polarity.teacher",
        "compare.replicates.eval_curve.polarity.kd", "compare.replicates.loss.polarity.kd"}) {
    EXPECT_EQ(names.count(QString::fromLatin1(expected)), 1U) << expected;
  }

  // Accuracy: kd right on 3, 3 and 4 of the 6 eval examples; the teacher on the same 4 each time.
  const PlotContent accuracy = build(catalog, QStringLiteral("compare.replicates.accuracy.polarity"));
  ASSERT_GE(accuracy.series.size(), 2);
  const PlotSeries& means = accuracy.series[0];
  const int kd = static_cast<int>(accuracy.xTickLabels.indexOf(QStringLiteral("kd")));
  ASSERT_GE(kd, 0);
  const int at = static_cast<int>(means.x.indexOf(static_cast<double>(kd)));
  ASSERT_GE(at, 0);
  const MeanAndInterval kdAcc = tInterval({0.5, 0.5, 4.0 / 6.0});
  EXPECT_NEAR(means.y[at], kdAcc.mean, 1e-9);
  EXPECT_NEAR(means.lower[at], kdAcc.lo, 1e-9);
  EXPECT_NEAR(means.upper[at], kdAcc.hi, 1e-9);
  EXPECT_FALSE(means.band);
  EXPECT_EQ(accuracy.series[1].y.size(), 9); // each replicate's value of each of the 3 models

  // The teacher's eval curve: 0.5 + d and 4/6 + d at epochs 1 and 2, d = 0, -0.05, +0.1.
  const PlotContent curve = build(catalog, QStringLiteral("compare.replicates.eval_curve.polarity.teacher"));
  ASSERT_EQ(curve.series.size(), 1);
  const PlotSeries& band = curve.series[0];
  EXPECT_TRUE(band.band);
  ASSERT_EQ(band.x, (QVector<double>{1, 2}));
  for (int e = 0; e < 2; ++e) {
    const double base = e == 0 ? 0.5 : 4.0 / 6.0;
    // The curve is stored as float32: compare at its precision.
    const MeanAndInterval m = tInterval({base, base - 0.05, base + 0.1});
    EXPECT_NEAR(band.y[e], m.mean, 1e-6) << e;
    EXPECT_NEAR(band.lower[e], m.lo, 1e-6) << e;
    EXPECT_NEAR(band.upper[e], m.hi, 1e-6) << e;
  }
  EXPECT_TRUE(curve.yLabel.contains(QStringLiteral("band: 95% t CI"))) << curve.yLabel.toStdString();

  // kd's training loss at steps 10 and 20: 0.9 + l, 0.7 + l, l = 0, 0.1, 0.2.
  const PlotContent loss = build(catalog, QStringLiteral("compare.replicates.loss.polarity.kd"));
  ASSERT_EQ(loss.series.size(), 1);
  ASSERT_EQ(loss.series[0].x, (QVector<double>{10, 20}));
  const MeanAndInterval l10 = tInterval({0.9, 1.0, 1.1});
  EXPECT_NEAR(loss.series[0].y[0], l10.mean, 1e-6);
  EXPECT_NEAR(loss.series[0].lower[0], l10.lo, 1e-6);
  EXPECT_NEAR(loss.series[0].upper[0], l10.hi, 1e-6);

  // Restoring the content keeps the band a band (the export path rebuilds plots from it).
  PlotWidget restored;
  restored.setContent(curve);
  ASSERT_EQ(restored.series().size(), 1);
  EXPECT_TRUE(restored.series()[0].band);
  EXPECT_EQ(restored.series()[0].lower, band.lower);

  // Two runs of other jobs (no replicate seed): plain comparisons only.
  const QString a = dir.filePath(QStringLiteral("a.h5"));
  const QString b = dir.filePath(QStringLiteral("b.h5"));
  test::writeSmallRun(a, false, 0);
  test::writeSmallRun(b, false, 1);
  RunDocument docA(a);
  RunDocument docB(b);
  const FigureCatalog plain(std::vector<const RunDocument*>{&docA, &docB});
  EXPECT_TRUE(replicateNames(plain).empty());
  EXPECT_TRUE(plain.find(QStringLiteral("compare.accuracy.polarity")).has_value());
}
