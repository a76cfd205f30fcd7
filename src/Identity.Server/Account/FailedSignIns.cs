using System.Net;
using System.Net.Sockets;
using Identity.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// Account lockout stops guessing one account's password; it does nothing against password spraying, where one
/// network tries a common password on many accounts, once each. Failed sign-ins are therefore also counted per client
/// network (an IPv4 address, an IPv6 /64, which one subscriber usually holds whole), and past
/// Identity:RateLimiting:FailedSignIns that network's password sign-ins are refused until the window ends: right
/// password or not, so that the refusal confirms no guess, and without spending a password hash on them.
/// </summary>
public sealed class FailedSignIns(RateLimitCounters counters, IOptions<RateLimitOptions> options, TimeProvider time)
{
    RateLimitOptions.Limit Limit => options.Value.FailedSignIns;

    /// <summary>How long the caller's network must wait before its next sign-in, or null when it may sign in now.</summary>
    public TimeSpan? RetryAfter(HttpContext http)
    {
        if (!options.Value.Enabled)
            return null;
        var verdict = counters.Peek(KeyOf(http), Limit);
        return verdict.Allowed ? null : verdict.Reset - time.GetUtcNow();
    }

    public void Record(HttpContext http)
    {
        if (options.Value.Enabled)
            counters.Take(KeyOf(http), Limit);
    }

    static string KeyOf(HttpContext http) => "failed-sign-in|" + NetworkOf(http.Connection.RemoteIpAddress);

    internal static string NetworkOf(IPAddress? address)
    {
        if (address is null)
            return "local";
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
            return address.ToString();
        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }
}
