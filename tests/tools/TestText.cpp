// SPDX-License-Identifier: MIT
// The string helpers of the tools (MRLText.h).
#include <cerrno>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "MRLText.h"

using namespace MRLPlugin;

TEST(MRLText, TrimRemovesSurroundingWhitespace) {
    EXPECT_EQ(trim("  a b \t\r\n"), "a b");
    EXPECT_EQ(trim("\tC1"), "C1");
    EXPECT_EQ(trim("plain"), "plain");
    EXPECT_EQ(trim(" \t\r\n "), "");
    EXPECT_EQ(trim(""), "");
}

TEST(MRLText, TrimTakesTheWhitespaceToRemove) {
    EXPECT_EQ(trim(" 5\r\n", " \t"), "5\r\n");
    EXPECT_EQ(trim("--x--", "-"), "x");
}

TEST(MRLText, OpenErrorNamesTheFileTheReasonAndTheFix) {
    errno = ENOENT;
    std::string message = openError("--system file", "/no/such.xml");
    EXPECT_EQ(message, std::string("cannot open the --system file \"/no/such.xml\": ") + std::strerror(ENOENT) +
                           "; check the path");
}
