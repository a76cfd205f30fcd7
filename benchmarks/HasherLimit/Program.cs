// The password hasher's own limit: how many password verifications per second this machine does with ASP.NET Core
// Identity's default hasher (the one the server uses), on every core. Password login cannot beat it: each login
// verifies one password. Usage: dotnet HasherLimit.dll <seconds>
using System.Diagnostics;
using Microsoft.AspNetCore.Identity;

var seconds = args.Length > 0 ? double.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 10;
var hasher = new PasswordHasher<object>();
var user = new object();
var hash = hasher.HashPassword(user, "a long enough passphrase");
var stopwatch = Stopwatch.StartNew();
long done = 0;
Parallel.For(0, Environment.ProcessorCount, _ =>
{
    while (stopwatch.Elapsed.TotalSeconds < seconds)
    {
        if (hasher.VerifyHashedPassword(user, hash, "a long enough passphrase") != PasswordVerificationResult.Success)
            throw new InvalidOperationException("The hasher failed to verify its own hash.");
        Interlocked.Increment(ref done);
    }
});
Console.WriteLine((done / stopwatch.Elapsed.TotalSeconds).ToString("F1", System.Globalization.CultureInfo.InvariantCulture));
