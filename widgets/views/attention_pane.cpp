#include "widgets/views/attention_pane.h"

#include <QComboBox>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QSpinBox>

#include <exception>

#include "widgets/figures/figure_builders.h"
#include "widgets/figures/plot_widget.h"

namespace kdscope::widgets {

AttentionPane::AttentionPane(QWidget* parent) : QWidget(parent) {
  auto* layout = new QGridLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  auto* top = new QHBoxLayout;
  top->addWidget(new QLabel(tr("Example:"), this));
  m_example = new QSpinBox(this);
  m_example->setObjectName(QStringLiteral("attentionExample"));
  m_example->setRange(0, 0);
  top->addWidget(m_example);
  m_note = new QLabel(this);
  top->addWidget(m_note, 1);
  layout->addLayout(top, 0, 0, 1, 2);

  const auto makeSide = [&](Side& side, int column, const QString& name) {
    auto* row = new QHBoxLayout;
    row->addWidget(new QLabel(name, this));
    side.layer = new QComboBox(this);
    side.head = new QComboBox(this);
    row->addWidget(new QLabel(tr("layer"), this));
    row->addWidget(side.layer);
    row->addWidget(new QLabel(tr("head"), this));
    row->addWidget(side.head);
    row->addStretch(1);
    layout->addLayout(row, 1, column);
    side.plot = new PlotWidget(this);
    layout->addWidget(side.plot, 2, column);
    connect(side.layer, &QComboBox::currentIndexChanged, this, [this] { refresh(); });
    connect(side.head, &QComboBox::currentIndexChanged, this, [this] { refresh(); });
  };
  makeSide(m_teacher, 0, tr("Teacher"));
  makeSide(m_student, 1, tr("Student"));
  m_teacherPlot = m_teacher.plot;
  m_studentPlot = m_student.plot;
  m_teacherPlot->setObjectName(QStringLiteral("attentionTeacherPlot"));
  m_studentPlot->setObjectName(QStringLiteral("attentionStudentPlot"));
  layout->setRowStretch(2, 1);
  connect(m_example, &QSpinBox::valueChanged, this, [this] { refresh(); });
}

int AttentionPane::example() const { return m_example->value(); }

void AttentionPane::resetSelectors(const Side& side, const QString& model) {
  const QSignalBlocker blockLayer(side.layer);
  const QSignalBlocker blockHead(side.head);
  side.layer->clear();
  side.head->clear();
  if (m_context.run == nullptr || model.isEmpty()) {
    return;
  }
  const auto shape = m_context.run->attentionShape(m_context.task, model);
  if (!shape) {
    return;
  }
  for (int l = 0; l < shape->layers; ++l) {
    side.layer->addItem(QString::number(l), l);
  }
  side.head->addItem(tr("mean"), -1);
  for (int h = 0; h < shape->heads; ++h) {
    side.head->addItem(QString::number(h), h);
  }
  side.head->setCurrentIndex(side.head->count() > 1 ? 1 : 0);
}

void AttentionPane::setContext(const ViewContext& context) {
  m_context = context;
  resetSelectors(m_teacher, context.teacher);
  resetSelectors(m_student, context.student);
  int examples = 0;
  if (context.run != nullptr) {
    for (const QString& model : {context.teacher, context.student}) {
      if (!model.isEmpty()) {
        if (const auto shape = context.run->attentionShape(context.task, model)) {
          examples = examples == 0 ? shape->examples : std::min(examples, shape->examples);
        }
      }
    }
  }
  {
    // Every eval example can be chosen; those past n_att say that no attention was kept.
    const int evalExamples = context.run != nullptr && !context.task.isEmpty()
                                 ? static_cast<int>(context.run->labels(context.task).size())
                                 : 0;
    const QSignalBlocker block(m_example);
    m_example->setRange(0, std::max(0, evalExamples - 1));
    m_example->setEnabled(evalExamples > 0);
  }
  m_note->setText(examples > 0 ? tr("attention is kept for eval examples 0 .. %1").arg(examples - 1) : QString());
  refresh();
}

void AttentionPane::setExample(int example) { m_example->setValue(example); }

void AttentionPane::selectTeacherHead(int layer, int head) {
  const QSignalBlocker block(m_teacher.layer);
  m_teacher.layer->setCurrentIndex(m_teacher.layer->findData(layer));
  m_teacher.head->setCurrentIndex(m_teacher.head->findData(head)); // refreshes
  refresh();
}

void AttentionPane::selectStudentHead(int layer, int head) {
  const QSignalBlocker block(m_student.layer);
  m_student.layer->setCurrentIndex(m_student.layer->findData(layer));
  m_student.head->setCurrentIndex(m_student.head->findData(head));
  refresh();
}

void AttentionPane::refresh() {
  try {
    fillSide(m_teacher, m_context.teacher);
    fillSide(m_student, m_context.student);
  } catch (const std::exception& error) {
    m_teacher.plot->clear();
    m_student.plot->clear();
    m_teacher.plot->setMessage(QString::fromUtf8(error.what()));
  }
}

void AttentionPane::fillSide(const Side& side, const QString& model) {
  side.plot->clear();
  if (m_context.run == nullptr || model.isEmpty()) {
    side.plot->setMessage(tr("no model"));
    return;
  }
  const auto shape = m_context.run->attentionShape(m_context.task, model);
  const int example = m_example->value();
  if (shape && (example >= shape->examples || side.layer->currentIndex() < 0)) {
    side.plot->setMessage(tr("no attention kept for example %1").arg(example));
    return;
  }
  figures::buildAttention(*side.plot, *m_context.run, m_context.task, model, example, side.layer->currentData().toInt(),
                          side.head->currentData().toInt());
}

} // namespace kdscope::widgets
