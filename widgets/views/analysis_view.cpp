#include "widgets/views/analysis_view.h"

#include <QLabel>
#include <QVBoxLayout>

#include <cmath>
#include <exception>

#include "core/analysis/interval_text.h"

namespace kdscope::widgets {

QString noAnalysisMessage(const RunDocument& run) {
  return QObject::tr("no analysis yet: run `kdscope analyze %1`").arg(run.path());
}

QString formatNumber(double value, int decimals) {
  return std::isnan(value) ? QStringLiteral("-") : QString::number(value, 'f', decimals);
}

QString formatInterval(double value, const core::analysis::Interval* interval, int decimals, bool showSign) {
  if (interval == nullptr) {
    return showSign && !std::isnan(value) ? QString::fromStdString(core::analysis::numberText(value, decimals, true))
                                          : formatNumber(value, decimals);
  }
  return QString::fromStdString(core::analysis::intervalText(*interval, decimals, showSign));
}

QString formatP(double p) { return QString::fromStdString(core::analysis::pValueText(p)); }

QString intervalTooltip(const core::analysis::Interval& interval) {
  QString text = QObject::tr("%1 [%2, %3]\n%4% interval over %5")
                     .arg(QString::number(interval.estimate, 'g', 17), QString::number(interval.lo, 'g', 17),
                          QString::number(interval.hi, 'g', 17))
                     .arg(std::lround(100.0 * interval.level))
                     .arg(QString::fromStdString(interval.over));
  if (interval.resamples > 0) {
    text += QObject::tr(", B = %1 resamples of %2 examples").arg(interval.resamples).arg(interval.count);
  }
  return text;
}

QString noDetectableDifference() { return QString::fromLatin1(core::analysis::kNoDetectableDifference); }

AnalysisView::AnalysisView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  m_error = new QLabel(this);
  m_error->setWordWrap(true);
  m_error->setStyleSheet(QStringLiteral("color: #D55E00;"));
  m_error->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_error->hide();
  m_body = new QWidget(this);
  layout->addWidget(m_error);
  layout->addWidget(m_body, 1);
}

QString AnalysisView::errorText() const { return m_error->isHidden() ? QString() : m_error->text(); }

void AnalysisView::setContext(const ViewContext& context) {
  m_context = context;
  m_error->clear();
  m_error->hide();
  try {
    clearView();
    if (context.run != nullptr && !context.task.isEmpty()) {
      populate();
    }
  } catch (const std::exception& error) {
    m_error->setText(tr("Cannot show %1: %2").arg(context.task, QString::fromUtf8(error.what())));
    m_error->show();
  } catch (...) {
    m_error->setText(tr("Cannot show %1: unknown error").arg(context.task));
    m_error->show();
  }
}

} // namespace kdscope::widgets
