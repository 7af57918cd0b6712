// Widget tests: GoogleTest with an offscreen QApplication (widgets need one).
//
// Two helper modes serve the command-line tests (tests/widgets/*.sh):
//   kdscope_widgets_tests --write-run PATH [--analysis] [--variant N] [--replicate-seed S]
//       writes the small test run file (test_run_file.cpp) and exits;
//   kdscope_widgets_tests --write-study DIR
//       writes the hand-made study (test_study_export.cpp: summary and cell run files);
//   kdscope_widgets_tests --window-export RUN OUT_DIR STYLE_FILE
//       opens RUN in the workbench window and exports its figure pack the way a user does:
//       File > Export figure pack, the style file loaded in the dialog, OUT_DIR, Export.
//       Exits 0 when every figure was written. The platform is QT_QPA_PLATFORM's (offscreen
//       when unset), so it can run under Xvfb with xcb too.

#include <QAction>
#include <QApplication>
#include <QDir>
#include <QSettings>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTimer>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "test_run_file.h"
#include "widgets/figures/export_dialog.h"
#include "widgets/figures/figure_style_editor.h"
#include "widgets/shell/main_window.h"

namespace {

int writeRun(int argc, char** argv) {
  bool analysis = false;
  int variant = 0;
  unsigned long long seed = 0;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--analysis") == 0) {
      analysis = true;
    } else if (std::strcmp(argv[i], "--variant") == 0 && i + 1 < argc) {
      variant = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--replicate-seed") == 0 && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    }
  }
  try {
    kdscope::widgets::test::writeSmallRun(QString::fromLocal8Bit(argv[2]), analysis, variant, seed);
  } catch (const std::exception& error) {
    std::cerr << "write-run: " << error.what() << "\n";
    return 1;
  }
  return 0;
}

// File > Export figure pack in a real window, driven through its menu action and dialog.
int windowExport(const QString& run, const QString& out, const QString& style) {
  using namespace kdscope::widgets;
  MainWindow window([](const kdscope::core::JobSpec&, const kdscope::core::RunOptions&,
                       const kdscope::core::CancelToken&, const kdscope::core::ProgressSink&) {
    return kdscope::core::JobResult{};
  });
  window.show();
  if (!window.openRun(run, /*quiet=*/true)) {
    std::cerr << "window-export: cannot open " << run.toStdString() << "\n";
    return 1;
  }
  auto* action = window.findChild<QAction*>(QStringLiteral("exportPackAction"));
  if (action == nullptr) {
    std::cerr << "window-export: no File > Export figure pack action\n";
    return 1;
  }
  action->trigger();
  auto* dialog = window.findChild<ExportDialog*>(QStringLiteral("exportDialog"));
  if (dialog == nullptr) {
    std::cerr << "window-export: the export dialog did not open\n";
    return 1;
  }
  QString error;
  if (!dialog->styleEditor()->loadFile(style, &error)) {
    std::cerr << "window-export: " << error.toStdString() << "\n";
    return 1;
  }
  dialog->setOutDir(out);
  int status = 1;
  QObject::connect(&window, &MainWindow::figuresExported, &window,
                   [&status](const ExportSummary& summary, const QString& message) {
                     for (const ExportedFigure& figure : summary.figures) {
                       if (!figure.error.isEmpty()) {
                         std::cerr << "window-export: " << figure.error.toStdString() << "\n";
                       }
                     }
                     if (!message.isEmpty()) {
                       std::cerr << "window-export: " << message.toStdString() << "\n";
                     }
                     status = message.isEmpty() && summary.failures() == 0 && !summary.figures.empty() ? 0 : 1;
                     std::cout << "window-export: " << summary.figures.size() << " figures, "
                               << summary.failures() << " failed, platform "
                               << QGuiApplication::platformName().toStdString() << "\n";
                     QApplication::quit();
                   });
  dialog->accept();
  QTimer::singleShot(120000, [] { QApplication::exit(1); });
  QApplication::exec();
  return status;
}

} // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "--write-run") == 0) {
    return writeRun(argc, argv);
  }
  if (argc == 3 && std::strcmp(argv[1], "--write-study") == 0) {
    try {
      kdscope::widgets::test::writeHandStudy(QString::fromLocal8Bit(argv[2]));
    } catch (const std::exception& error) {
      std::cerr << "write-study: " << error.what() << "\n";
      return 1;
    }
    return 0;
  }
  // Test discovery runs this binary without the ctest environment: never need a display.
  if (std::getenv("QT_QPA_PLATFORM") == nullptr) {
    setenv("QT_QPA_PLATFORM", "offscreen", 1);
  }
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("KDScopeTests"));
  QApplication::setApplicationName(QStringLiteral("kdscope_widgets_tests"));
  // Settings (recent files, ...) go to a throw-away folder, never the user's.
  QTemporaryDir settingsDir;
  QStandardPaths::setTestModeEnabled(true);
  QSettings::setDefaultFormat(QSettings::IniFormat);
  QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, settingsDir.path());
  if (argc == 5 && std::strcmp(argv[1], "--window-export") == 0) {
    return windowExport(QString::fromLocal8Bit(argv[2]), QString::fromLocal8Bit(argv[3]),
                        QString::fromLocal8Bit(argv[4]));
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
