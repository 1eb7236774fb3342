using System.Buffers;
using System.Text;
using Kestrel.ReusePort.Shared;

namespace Kestrel.ReusePort.UnitTests;

/// <summary>The response parser of the repository's HTTP/1.1 test client (test/Shared), fed bytes as a socket would.</summary>
public sealed class Http1ResponseParserTests
{
    private const string ContentLengthResponse =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\nHello from pid 1234\n";

    private const string ChunkedResponse =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "6\r\nHello \r\n" +
        "E;ext=1\r\nfrom pid 1234\n\r\n" +
        "0\r\nX-Trailer: yes\r\n\r\n";

    [Fact]
    public void ContentLengthEndsTheBodyAndLeavesTheNextResponse()
    {
        var next = "HTTP/1.1 204 No Content\r\n\r\n";
        var (parser, body, used) = ParseInOneRead(ContentLengthResponse + next);

        Assert.True(parser.Complete);
        Assert.Equal(200, parser.StatusCode);
        Assert.False(parser.ConnectionClose);
        Assert.Equal("Hello from pid 1234\n", body);
        Assert.Equal(ContentLengthResponse.Length, used);
    }

    [Fact]
    public void ChunksAreJoinedAndTrailersSkipped()
    {
        var (parser, body, used) = ParseInOneRead(ChunkedResponse);

        Assert.True(parser.Complete);
        Assert.Equal(200, parser.StatusCode);
        Assert.Equal("Hello from pid 1234\n", body);
        Assert.Equal(ChunkedResponse.Length, used);
    }

    [Theory]
    [InlineData(ContentLengthResponse)]
    [InlineData(ChunkedResponse)]
    public void EverySplitOfTheBytesParsesTheSame(string response)
    {
        var bytes = Encoding.ASCII.GetBytes(response);

        // Byte by byte, and every split into two reads.
        Assert.Equal("Hello from pid 1234\n", ParseInReads(bytes, Enumerable.Repeat(1, bytes.Length)));
        for (var split = 1; split < bytes.Length; split++)
        {
            Assert.Equal("Hello from pid 1234\n", ParseInReads(bytes, [split, bytes.Length - split]));
        }
    }

    [Theory]
    [InlineData("Connection: close\r\n", true)]
    [InlineData("Connection: Keep-Alive, Close\r\n", true)]
    [InlineData("Connection: keep-alive\r\n", false)]
    [InlineData("", false)]
    public void ConnectionCloseIsWhatTheServerSaid(string header, bool close)
    {
        var (parser, _, _) = ParseInOneRead($"HTTP/1.1 200 OK\r\n{header}Content-Length: 0\r\n\r\n");

        Assert.True(parser.Complete);
        Assert.Equal(close, parser.ConnectionClose);
    }

    [Fact]
    public void WithoutLengthOrChunksTheBodyRunsUntilTheClose()
    {
        var (parser, body, _) = ParseInOneRead("HTTP/1.1 200 OK\r\n\r\nHello from pid 1234\n");

        Assert.False(parser.Complete);
        Assert.True(parser.UntilClose);
        Assert.True(parser.ConnectionClose);
        Assert.True(parser.EndOfStream());
        Assert.Equal("Hello from pid 1234\n", body);
    }

    [Theory]
    [InlineData("HTTP/1.1 204 No Content\r\n\r\n", 204)]
    [InlineData("HTTP/1.1 304 Not Modified\r\nContent-Length: 20\r\n\r\n", 304)]
    [InlineData("HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", 503)]
    public void ResponsesWithoutABodyAreCompleteAfterTheirHeaders(string response, int status)
    {
        var (parser, body, used) = ParseInOneRead(response);

        Assert.True(parser.Complete);
        Assert.Equal(status, parser.StatusCode);
        Assert.Equal(string.Empty, body);
        Assert.Equal(response.Length, used);
    }

    [Fact]
    public void AConnectionEndingInTheBodyIsNotAResponse()
    {
        var (parser, _, _) = ParseInOneRead("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nHello");

        Assert.False(parser.Complete);
        Assert.False(parser.EndOfStream());
    }

    [Theory]
    [InlineData("HTTP/2 200 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 20x OK\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n")]
    public void AMalformedResponseThrows(string response)
    {
        Assert.Throws<InvalidDataException>(() => ParseInOneRead(response));
    }

    private static (Http1ResponseParser Parser, string Body, int Used) ParseInOneRead(string response)
    {
        var parser = default(Http1ResponseParser);
        var body = new ArrayBufferWriter<byte>();
        var used = parser.Parse(Encoding.ASCII.GetBytes(response), body);
        return (parser, Encoding.ASCII.GetString(body.WrittenSpan), used);
    }

    /// <summary>Feeds <paramref name="bytes"/> in reads of the given sizes, keeping what the parser did not use for
    /// the next read, as RawHttpClient does; the response must be complete at the end and not before.</summary>
    private static string ParseInReads(byte[] bytes, IEnumerable<int> reads)
    {
        var parser = default(Http1ResponseParser);
        var body = new ArrayBufferWriter<byte>();
        var start = 0;
        var end = 0;
        foreach (var read in reads)
        {
            Assert.False(parser.Complete);
            end += read;
            start += parser.Parse(bytes.AsSpan(start, end - start), body);
        }

        Assert.True(parser.Complete);
        Assert.Equal(bytes.Length, start);
        return Encoding.ASCII.GetString(body.WrittenSpan);
    }
}
