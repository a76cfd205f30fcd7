using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Identity.Server.Hosting;

public static class JsonShape
{
    /// <summary>
    /// The seed's JSON is snake_case (last_login, role_id, request_id) with times in UTC written with a Z
    /// ("2023-12-01T10:30:00Z"): bodies in and out use it.
    /// </summary>
    public static WebApplicationBuilder AddSnakeCaseJson(this WebApplicationBuilder builder)
    {
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            json.SerializerOptions.Converters.Add(new UtcTimes());
            json.SerializerOptions.Converters.Add(new StringLists());
        });
        return builder;
    }

    /// <summary>
    /// Writes every time in UTC with a Z and no trailing zero fractions, where System.Text.Json would write the stored
    /// offset ("+00:00"): clients that compare or parse the seed's format strictly get exactly it. Reads any ISO 8601 time.
    /// </summary>
    public sealed class UtcTimes : JsonConverter<DateTimeOffset>
    {
        public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.GetDateTimeOffset();

        public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
            writer.WriteStringValue(value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// A list of names (grant types, roles, permissions, events) never holds null. System.Text.Json reads
    /// ["a", null] into a List&lt;string&gt; as it is, which every endpoint would then have to check; refused here, it is
    /// a malformed body (400) like any other value of the wrong type.
    /// </summary>
    public sealed class StringLists : JsonConverter<List<string>>
    {
        public override List<string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.StartArray)
                throw new JsonException("Expected a list of strings.");
            var list = new List<string>();
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                list.Add(reader.TokenType == JsonTokenType.String ? reader.GetString()! : throw new JsonException("A list of strings holds only strings."));
            return list;
        }

        public override void Write(Utf8JsonWriter writer, List<string> value, JsonSerializerOptions options)
        {
            writer.WriteStartArray();
            foreach (var item in value)
                writer.WriteStringValue(item);
            writer.WriteEndArray();
        }
    }
}
