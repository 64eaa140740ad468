// The VADER lexicons (Hutto & Gilbert, ICWSM 2014; MIT licence), compiled into the binary.
// The definitions are generated at build time by vader_embed.cmake from .deps/vader/, which
// scripts/fetch_vader_lexicon.sh fills from the authors' vaderSentiment 3.3.2 wheel.
#pragma once

#include <string_view>

namespace galley::model {

// The text of vader_lexicon.txt ("token<TAB>mean<TAB>stddev<TAB>[ratings]" lines), except that
// CR LF line ends are LF (see vader_embed.cmake). The view stays valid for the life of the
// program. Thread-safe.
std::string_view VaderLexiconText();

// The text of emoji_utf8_lexicon.txt ("emoji<TAB>description" lines), except that CR LF line ends
// are LF. The view stays valid for the life of the program. Thread-safe.
std::string_view EmojiLexiconText();

}  // namespace galley::model
