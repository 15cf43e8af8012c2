// ExpandInputFiles: directory listing and glob(3) expansion of the spec's data paths.
#include "worker/data/input_files.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>

namespace mtps {

StatusOr<std::vector<std::string>> ExpandInputFiles(const std::vector<std::string>& paths,
                                                    DataSpec::Format format) {
  const std::string ext = format == DataSpec::Format::kMtb ? ".mtb" : ".csv";
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    const size_t before = files.size();
    if (std::filesystem::is_directory(p, ec)) {
      for (const auto& e : std::filesystem::directory_iterator(p, ec)) {
        if (e.is_regular_file() && e.path().extension() == ext) files.push_back(e.path().string());
      }
      if (ec) return NotFound(p + ": cannot list directory: " + ec.message());
    } else if (p.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      const int rc = glob(p.c_str(), 0, nullptr, &g);
      if (rc == 0) {
        for (size_t i = 0; i < g.gl_pathc; ++i) files.push_back(g.gl_pathv[i]);
      }
      globfree(&g);
    } else if (std::filesystem::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      return NotFound(p + ": no such data file or directory");
    }
    if (files.size() == before) return NotFound(p + ": matches no " + ext + " file");
    std::sort(files.begin() + static_cast<long>(before), files.end());
  }
  return files;
}

}  // namespace mtps
