using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Identity.Server.Data.Migrations.SqlServer
{
    /// <inheritdoc />
    public partial class MfaPhone : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "Method",
                table: "MfaFactors",
                type: "nvarchar(max)",
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<string>(
                name: "ProtectedPhone",
                table: "MfaFactors",
                type: "nvarchar(max)",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "CodeHash",
                table: "MfaChallenges",
                type: "nvarchar(max)",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Method",
                table: "MfaFactors");

            migrationBuilder.DropColumn(
                name: "ProtectedPhone",
                table: "MfaFactors");

            migrationBuilder.DropColumn(
                name: "CodeHash",
                table: "MfaChallenges");
        }
    }
}
