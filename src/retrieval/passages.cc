#include "retrieval/passages.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "model/utf8.h"

namespace galley::retrieval {
namespace fs = std::filesystem;
namespace {

size_t CountWords(std::string_view s) {
  size_t n = 0;
  bool in_word = false;
  for (char c : s) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot open ", path.string()));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Cuts `paragraph` into pieces of at most `max_words` words.
std::vector<std::string> CutWords(std::string_view paragraph, size_t max_words) {
  std::vector<std::string> out;
  std::string cur;
  size_t words = 0;
  for (std::string_view w : Split(paragraph, ' ')) {
    if (w.empty()) continue;
    if (words == max_words) {
      out.push_back(std::move(cur));
      cur.clear();
      words = 0;
    }
    if (!cur.empty()) cur.push_back(' ');
    cur.append(w);
    ++words;
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace

std::string HeadingAnchor(std::string_view heading) {
  std::string out;
  for (size_t i = 0; i < heading.size(); ++i) {
    const auto c = static_cast<unsigned char>(heading[i]);
    if (c >= 0x80) {
      out.push_back(static_cast<char>(c));  // letters of other scripts stay as they are
    } else if (std::isalnum(c) || c == '-' || c == '_') {
      out.push_back(static_cast<char>(std::tolower(c)));
    } else if (c == ' ') {
      out.push_back('-');
    }
  }
  return out;
}

std::vector<Passage> SplitMarkdown(std::string_view label, std::string_view markdown,
                                   size_t max_words) {
  max_words = std::max<size_t>(max_words, 8);
  std::vector<Passage> out;
  std::string heading;  // the current heading's text
  std::string source(label);
  std::vector<std::string> paragraphs;  // of the current section
  std::string para;
  auto end_paragraph = [&] {
    if (!para.empty()) paragraphs.push_back(std::move(para));
    para.clear();
  };
  auto end_section = [&] {
    end_paragraph();
    std::string cur;
    size_t words = 0;
    auto emit = [&] {
      if (cur.empty()) return;
      out.push_back({heading.empty() ? cur : StrCat(heading, ": ", cur), source});
      cur.clear();
      words = 0;
    };
    for (const std::string& p : paragraphs) {
      for (std::string& piece : CutWords(p, max_words)) {
        const size_t n = CountWords(piece);
        if (words > 0 && words + n > max_words) emit();
        if (!cur.empty()) cur.push_back(' ');
        cur.append(piece);
        words += n;
      }
    }
    emit();
    paragraphs.clear();
  };
  bool in_fence = false;
  bool in_comment = false;
  for (std::string_view line : Split(markdown, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string_view trimmed = StripWhitespace(line);
    if (StartsWith(trimmed, "```") || StartsWith(trimmed, "~~~")) {
      in_fence = !in_fence;
      end_paragraph();
      continue;
    }
    if (in_fence) continue;
    if (in_comment || StartsWith(trimmed, "<!--")) {
      in_comment = trimmed.find("-->") == std::string_view::npos;
      continue;
    }
    if (StartsWith(line, "#")) {
      size_t level = line.find_first_not_of('#');
      if (level != std::string_view::npos && level <= 6 && line[level] == ' ') {
        end_section();
        heading = std::string(StripWhitespace(line.substr(level)));
        source = StrCat(label, "#", HeadingAnchor(heading));
        continue;
      }
    }
    if (trimmed.empty()) {
      end_paragraph();
      continue;
    }
    if (!para.empty()) para.push_back(' ');
    para.append(trimmed);
  }
  end_section();
  return out;
}

absl::StatusOr<std::vector<Passage>> CollectPassages(const fs::path& path, size_t max_words,
                                                     const fs::path& label_root) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return absl::NotFoundError(StrCat(path.string(), " does not exist"));
  std::vector<Passage> out;
  auto check_utf8 = [](const fs::path& file, const std::string& text) -> absl::Status {
    if (!model::IsValidUtf8(text)) {
      return absl::InvalidArgumentError(StrCat(file.string(), ": not valid UTF-8"));
    }
    return absl::OkStatus();
  };
  if (path.extension() == ".jsonl") {
    auto text = ReadFile(path);
    if (!text.ok()) return text.status();
    RETURN_IF_ERROR(check_utf8(path, *text));
    size_t line_no = 0;
    for (std::string_view line : Split(*text, '\n')) {
      ++line_no;
      if (StripWhitespace(line).empty()) continue;
      boost::system::error_code jec;
      boost::json::value v =
          boost::json::parse(boost::json::string_view(line.data(), line.size()), jec);
      const auto where = StrCat(path.string(), ":", line_no, ": ");
      if (jec) return absl::InvalidArgumentError(StrCat(where, "not JSON: ", jec.message()));
      const auto* obj = v.if_object();
      const auto* t = obj ? obj->if_contains("text") : nullptr;
      if (t == nullptr || !t->is_string() || t->as_string().empty()) {
        return absl::InvalidArgumentError(StrCat(where, "needs a non-empty string \"text\""));
      }
      Passage p{std::string(t->as_string()), StrCat(path.filename().string(), ":", line_no)};
      if (const auto* s = obj->if_contains("source")) {
        if (!s->is_string()) {
          return absl::InvalidArgumentError(StrCat(where, "\"source\" must be a string"));
        }
        p.source = std::string(s->as_string());
      }
      out.push_back(std::move(p));
    }
  } else {
    std::vector<fs::path> files;
    const fs::path root =
        label_root.empty() ? (fs::is_directory(path) ? path : path.parent_path()) : label_root;
    if (fs::is_directory(path, ec)) {
      for (const auto& e : fs::recursive_directory_iterator(path, ec)) {
        if (e.is_regular_file() && e.path().extension() == ".md") files.push_back(e.path());
      }
      if (ec) return absl::InvalidArgumentError(StrCat(path.string(), ": ", ec.message()));
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(path);
    }
    for (const fs::path& f : files) {
      auto text = ReadFile(f);
      if (!text.ok()) return text.status();
      RETURN_IF_ERROR(check_utf8(f, *text));
      const std::string label = fs::relative(f, root, ec).generic_string();
      for (Passage& p : SplitMarkdown(ec ? f.generic_string() : label, *text, max_words)) {
        out.push_back(std::move(p));
      }
    }
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(StrCat(path.string(), ": no passages found"));
  }
  return out;
}

absl::Status WritePassages(const fs::path& file, const std::vector<Passage>& passages) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(StrCat("cannot write ", file.string()));
  std::string line;
  for (const Passage& p : passages) {
    line.assign("{\"text\":");
    JsonAppendString(line, p.text);
    line.append(",\"source\":");
    JsonAppendString(line, p.source);
    line.append("}\n");
    out << line;
  }
  out.close();
  if (!out) return absl::InternalError(StrCat("cannot write ", file.string()));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Passage>> ReadPassages(const fs::path& file) {
  auto text = ReadFile(file);
  if (!text.ok()) return text.status();
  std::vector<Passage> out;
  size_t line_no = 0;
  for (std::string_view line : Split(*text, '\n')) {
    ++line_no;
    if (line.empty()) continue;
    boost::system::error_code ec;
    boost::json::value v =
        boost::json::parse(boost::json::string_view(line.data(), line.size()), ec);
    const auto* obj = ec ? nullptr : v.if_object();
    const auto* t = obj ? obj->if_contains("text") : nullptr;
    const auto* s = obj ? obj->if_contains("source") : nullptr;
    if (t == nullptr || s == nullptr || !t->is_string() || !s->is_string()) {
      return absl::DataLossError(StrCat(file.string(), ":", line_no, ": not a passage"));
    }
    out.push_back({std::string(t->as_string()), std::string(s->as_string())});
  }
  return out;
}

}  // namespace galley::retrieval
