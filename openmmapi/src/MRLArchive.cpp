// SPDX-License-Identifier: MIT
#include "internal/MRLArchive.h"
#include "openmm/OpenMMException.h"
#include <array>
#include <cstdint>
#include <vector>
#include <zlib.h>

using OpenMM::OpenMMException;

namespace {

const uint32_t END_OF_CENTRAL_DIRECTORY = 0x06054b50, CENTRAL_HEADER = 0x02014b50, LOCAL_HEADER = 0x04034b50;
const uint32_t ZIP64_MARKER = 0xffffffffu;

/// Little-endian fields of the archive, every read checked against its end.
class Bytes {
public:
    explicit Bytes(const std::string& bytes)
        : data(reinterpret_cast<const unsigned char*>(bytes.data())), size(bytes.size()) {}
    bool has(size_t offset, size_t length) const { return offset <= size && length <= size - offset; }
    uint32_t u16(size_t offset) const { return data[offset] | (data[offset + 1] << 8); }
    uint32_t u32(size_t offset) const {
        return data[offset] | (data[offset + 1] << 8) | (data[offset + 2] << 16) | (uint32_t(data[offset + 3]) << 24);
    }
    const unsigned char* at(size_t offset) const { return data + offset; }
    size_t length() const { return size; }

private:
    const unsigned char* data;
    size_t size;
};

/// The CRC-32 of a deflated member's content, inflated in 64 KiB pieces (never more than `expected` bytes in all:
/// a member that inflates to more, or less, is damaged).
template <class Damaged>
uint32_t inflatedCrc(const unsigned char* data, uint32_t size, uint32_t expected, Damaged damaged) {
    z_stream stream{};
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK)
        throw damaged();
    stream.next_in = const_cast<unsigned char*>(data);
    stream.avail_in = size;
    std::vector<unsigned char> piece(1 << 16);
    uLong crc = crc32(0, nullptr, 0);
    size_t total = 0;
    int status = Z_OK;
    while (status == Z_OK) {
        stream.next_out = piece.data();
        stream.avail_out = static_cast<uInt>(piece.size());
        status = inflate(&stream, Z_NO_FLUSH);
        size_t produced = piece.size() - stream.avail_out;
        total += produced;
        if ((status != Z_OK && status != Z_STREAM_END) || total > expected || (status == Z_OK && produced == 0)) {
            inflateEnd(&stream);
            throw damaged();
        }
        crc = crc32(crc, piece.data(), static_cast<uInt>(produced));
    }
    inflateEnd(&stream);
    if (total != expected)
        throw damaged();
    return static_cast<uint32_t>(crc);
}

} // namespace

std::vector<std::string> MRLPlugin::checkModelArchive(const std::string& text, const std::string& source) {
    Bytes bytes(text);
    auto damaged = [&](const std::string& why) {
        return OpenMMException("MRLForce: " + source + " is a damaged model archive: " + why +
                               ". Save or copy the model file again.");
    };
    // The end-of-central-directory record: 22 bytes plus a comment of up to 65535 bytes, at the very end.
    size_t end = std::string::npos;
    for (size_t back = 22; back <= 22 + 65535 && back <= bytes.length(); back++) {
        size_t offset = bytes.length() - back;
        if (bytes.u32(offset) == END_OF_CENTRAL_DIRECTORY && offset + 22 + bytes.u16(offset + 20) == bytes.length()) {
            end = offset;
            break;
        }
    }
    if (end == std::string::npos)
        throw OpenMMException(
            "MRLForce: " + source +
            " is not a TorchScript model (it is not a complete zip archive: no end record; a file cut "
            "short, or another kind of file). Save the model with "
            "torch.jit.save(torch.jit.script(model), path).");
    uint32_t entries = bytes.u16(end + 10), directorySize = bytes.u32(end + 12), directoryOffset = bytes.u32(end + 16);
    if (entries == 0xffff || directorySize == ZIP64_MARKER || directoryOffset == ZIP64_MARKER)
        throw damaged("it is a zip64 archive (over 4 GiB or 65535 members), which MRLForce does not read");
    if (!bytes.has(directoryOffset, directorySize) || directoryOffset + size_t(directorySize) > end)
        throw damaged("its central directory lies outside the file");
    if (entries == 0)
        throw damaged("it holds no members");
    size_t offset = directoryOffset;
    std::vector<std::string> names;
    for (uint32_t e = 0; e < entries; e++) {
        if (!bytes.has(offset, 46) || bytes.u32(offset) != CENTRAL_HEADER)
            throw damaged("entry " + std::to_string(e) + " of its central directory is cut or overwritten");
        uint32_t method = bytes.u16(offset + 10), crc = bytes.u32(offset + 16);
        uint32_t compressedSize = bytes.u32(offset + 20), uncompressedSize = bytes.u32(offset + 24);
        uint32_t nameLength = bytes.u16(offset + 28), extraLength = bytes.u16(offset + 30);
        uint32_t commentLength = bytes.u16(offset + 32), localOffset = bytes.u32(offset + 42);
        if (!bytes.has(offset + 46, nameLength) || nameLength == 0)
            throw damaged("entry " + std::to_string(e) + " of its central directory has no readable name");
        std::string name(reinterpret_cast<const char*>(bytes.at(offset + 46)), nameLength);
        for (char c : name)
            if (static_cast<unsigned char>(c) < 32)
                throw damaged("entry " + std::to_string(e) + " has a name with control characters");
        if (compressedSize == ZIP64_MARKER || uncompressedSize == ZIP64_MARKER || localOffset == ZIP64_MARKER)
            throw damaged("the member \"" + name + "\" has zip64 sizes (over 4 GiB), which MRLForce does not read");
        if (!bytes.has(localOffset, 30) || bytes.u32(localOffset) != LOCAL_HEADER)
            throw damaged("the member \"" + name + "\" does not start where the directory says");
        size_t data = localOffset + 30 + size_t(bytes.u16(localOffset + 26)) + bytes.u16(localOffset + 28);
        if (!bytes.has(data, compressedSize) || data + compressedSize > directoryOffset)
            throw damaged("the member \"" + name + "\" runs past the end of the data");
        uint32_t actual = 0;
        if (method == 0) {
            if (compressedSize != uncompressedSize)
                throw damaged("the stored member \"" + name + "\" has two different sizes");
            actual = static_cast<uint32_t>(crc32(0, bytes.at(data), compressedSize));
        } else if (method == 8) {
            actual = inflatedCrc(bytes.at(data), compressedSize, uncompressedSize, [&] {
                return damaged("the compressed member \"" + name + "\" does not inflate to its " +
                               std::to_string(uncompressedSize) + " bytes");
            });
        } else
            throw damaged("the member \"" + name + "\" uses compression method " + std::to_string(method) +
                          "; torch.jit.save stores or deflates every member");
        if (actual != crc)
            throw damaged("the member \"" + name + "\" fails its CRC-32 check (bytes changed)");
        offset += 46 + size_t(nameLength) + extraLength + commentLength;
        names.push_back(name);
    }
    return names;
}
