// Widget tests: GoogleTest with an offscreen QApplication (widgets need one).
// `kdscope_widgets_tests --write-run PATH` writes the small test run file and exits; the
// Xvfb smoke test uses it.

#include <QApplication>
#include <QDir>
#include <QSettings>
#include <QStandardPaths>
#include <QTemporaryDir>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "test_run_file.h"

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--write-run") == 0) {
    try {
      kdscope::widgets::test::writeSmallRun(QString::fromLocal8Bit(argv[2]), /*withAnalysis=*/false);
    } catch (const std::exception& error) {
      std::cerr << "write-run: " << error.what() << "\n";
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
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
